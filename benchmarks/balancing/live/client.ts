/**
 * The request side of the live comparison: a keep-alive HTTP client sending GETs on
 * 127.0.0.1, labelling each outcome with the backend that served it. Requests that take
 * longer than `timeoutMs` are abandoned and reported as `timeout` with their full waiting
 * time, so a stuck backend still shows in the percentiles.
 */
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { type Dispatcher, Pool } from 'undici';
import type { Outcome } from '../../lib/open-loop.ts';

export interface Client {
  send(i: number, signal: AbortSignal): Promise<Outcome>;
  close(): void;
}

/** `portFor(i)`: where request `i` goes (one balancer, or the backends in turn for a direct baseline). */
export function httpClient(portFor: (i: number) => number, keyFor: (i: number) => string, timeoutMs: number): Client {
  const agent = new Agent({ keepAlive: true, maxSockets: 2048, maxFreeSockets: 2048 });
  const send = (i: number, signal: AbortSignal): Promise<Outcome> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: portFor(i), path: `/item/${keyFor(i)}`, agent, signal, headers: { 'x-request-key': keyFor(i) } },
        (res) => {
          res.resume();
          res.once('end', () => {
            clearTimeout(timer);
            const server = res.headers['x-server'];
            resolve({ status: res.statusCode ?? 0, server: typeof server === 'string' ? server : 'none' });
          });
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        resolve({ status: 'timeout' });
      }, timeoutMs);
      req.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      req.end();
    });
  return { send, close: () => agent.destroy() };
}

/**
 * The same client at a fraction of the CPU cost per request, for rates in the thousands
 * on a shared machine: an undici pool per port and a raw dispatch handler (no
 * `ClientRequest`, no response stream). The body is discarded.
 */
export function lightClient(portFor: (i: number) => number, keyFor: (i: number) => string, timeoutMs: number): Client {
  const pools = new Map<number, Pool>();
  const poolFor = (port: number): Pool => {
    let pool = pools.get(port);
    if (!pool) {
      pool = new Pool(`http://127.0.0.1:${port}`, { pipelining: 1, keepAliveTimeout: 60_000 });
      pools.set(port, pool);
    }
    return pool;
  };
  const send = (i: number, signal: AbortSignal): Promise<Outcome> =>
    new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const key = keyFor(i);
      let status = 0;
      let server = 'none';
      let controller: Dispatcher.DispatchController | undefined;
      const timer = setTimeout(() => {
        controller?.abort(new Error('timed out'));
        resolve({ status: 'timeout' });
      }, timeoutMs);
      poolFor(portFor(i)).dispatch(
        { path: `/item/${key}`, method: 'GET', headers: { 'x-request-key': key } },
        {
          onRequestStart(c) {
            controller = c;
          },
          onResponseStart(_c, code, headers) {
            status = code;
            const name = headers['x-server'];
            if (typeof name === 'string') server = name;
          },
          onResponseData() {},
          onResponseEnd() {
            clearTimeout(timer);
            resolve({ status, server });
          },
          onResponseError(_c, error) {
            clearTimeout(timer);
            reject(error);
          },
        },
      );
    });
  return {
    send,
    close: () => {
      for (const pool of pools.values()) void pool.destroy();
    },
  };
}

/** One keep-alive connection of {@link rawClient}: one request at a time. */
interface RawConnection {
  socket: Socket;
  pending: Buffer | undefined;
  done: ((status: number) => void) | undefined;
  fail: ((error: Error) => void) | undefined;
}

/**
 * The cheapest client this harness has, for latency at thousands of requests per second on
 * a shared machine: keep-alive `node:net` connections to one port, the same GET written as
 * one buffer, the answer framed by `Content-Length` (or the end of a chunked body) and
 * nothing else parsed. A connection carries one request at a time; more are opened as
 * needed and kept. For responses of a few bytes only (the proxy-cost backends' `ok\n`).
 */
export function rawClient(port: number, key: string): { send(): Promise<number>; close(): void } {
  const request = Buffer.from(`GET /item/${key} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nx-request-key: ${key}\r\n\r\n`, 'latin1');
  const idle: RawConnection[] = [];
  const all = new Set<RawConnection>();
  const settle = (c: RawConnection, error: Error | undefined, status = 0): void => {
    const { done, fail } = c;
    c.done = undefined;
    c.fail = undefined;
    c.pending = undefined;
    if (error) {
      all.delete(c);
      const i = idle.indexOf(c);
      if (i !== -1) idle.splice(i, 1);
      c.socket.destroy();
      fail?.(error);
    } else {
      idle.push(c);
      done?.(status);
    }
  };
  const onData = (c: RawConnection, chunk: Buffer): void => {
    const buf = c.pending === undefined ? chunk : Buffer.concat([c.pending, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end === -1) {
      c.pending = buf;
      return;
    }
    const head = buf.toString('latin1', 0, end);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const complete = length ? buf.length >= end + 4 + Number(length[1]) : buf.subarray(end + 4).includes('0\r\n\r\n');
    if (!complete) {
      c.pending = buf;
      return;
    }
    settle(c, undefined, Number(head.slice(9, 12)));
  };
  const open = (): RawConnection => {
    const c: RawConnection = {
      socket: connect({ port, host: '127.0.0.1', noDelay: true }),
      pending: undefined,
      done: undefined,
      fail: undefined,
    };
    c.socket.on('data', (chunk: Buffer) => onData(c, chunk));
    c.socket.on('error', (error) => settle(c, error));
    c.socket.on('close', () => settle(c, new Error('connection closed')));
    all.add(c);
    return c;
  };
  return {
    send: () =>
      new Promise<number>((resolve, reject) => {
        const c = idle.pop() ?? open();
        c.done = resolve;
        c.fail = reject;
        c.socket.write(request);
      }),
    close: () => {
      for (const c of all) c.socket.destroy();
      all.clear();
    },
  };
}
