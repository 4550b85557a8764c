/**
 * The request side of the live comparison: a keep-alive HTTP client sending GETs on
 * 127.0.0.1, labelling each outcome with the backend that served it. Requests that take
 * longer than `timeoutMs` are abandoned and reported as `timeout` with their full waiting
 * time, so a stuck backend still shows in the percentiles.
 */
import { Agent, request } from 'node:http';
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
