/**
 * A hostile client's tools, for the attack tests and `npm run bench:attacks`: each starts
 * an attack on a gateway URL (loopback only) and returns how to stop it. Attacks come
 * from `localAddress` (by default 127.0.0.2: another client than the well-behaved one).
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';

/** A running attack. */
export interface Attack {
  /** Stops it: timers cleared, sockets closed. */
  stop(): void;
}

/** One upload in progress and how it was answered (status 0: no answer, the connection closed). */
export interface Upload extends Attack {
  readonly answer: Promise<{ status: number; body: string }>;
}

/** Options of {@link upload}. */
export interface UploadOptions {
  /** Declared `content-length`, bytes. */
  length: number;
  /** Bytes sent at once after the headers. */
  first: number;
  /** Bytes sent every `everyMs` after that (0: none). @default 0 */
  more?: number;
  /** @default 1000 */
  everyMs?: number;
  /** @default '127.0.0.2' */
  localAddress?: string;
  /** @default '/v1/resize?width=16' */
  path?: string;
}

/** A POST that sends its headers and `first` bytes, then `more` every `everyMs`, never more than `length`. */
export function upload(url: string, options: UploadOptions): Upload {
  const req = httpRequest(`${url}${options.path ?? '/v1/resize?width=16'}`, {
    method: 'POST',
    localAddress: options.localAddress ?? '127.0.0.2',
    headers: { 'content-type': 'image/jpeg', 'content-length': String(options.length) },
  });
  const answer = new Promise<{ status: number; body: string }>((resolve) => {
    req.once('response', (res) => {
      let body = '';
      res.on('data', (c) => {
        body += String(c);
      });
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.once('error', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', () => resolve({ status: 0, body: '' }));
    req.once('close', () => resolve({ status: 0, body: '' }));
  });
  req.flushHeaders();
  let sent = 0;
  const send = (n: number): void => {
    const size = Math.min(n, options.length - sent);
    if (size <= 0 || req.destroyed) return;
    req.write(Buffer.alloc(size, 0xff));
    sent += size;
  };
  send(options.first);
  const more = options.more ?? 0;
  const timer = more > 0 ? setInterval(() => send(more), options.everyMs ?? 1000) : undefined;
  return {
    answer,
    stop: () => {
      clearInterval(timer);
      req.destroy();
    },
  };
}

/** Many uploads at once. */
export function uploads(url: string, count: number, options: UploadOptions): Upload[] {
  return Array.from({ length: count }, () => upload(url, options));
}

/** Opens `count` connections that send nothing (or, with `partial`, half a request's headers) and hold them. */
export function idleConnections(url: string, count: number, options: { partial?: boolean; localAddress?: string } = {}): Attack {
  const { hostname, port } = new URL(url);
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = connect({ host: hostname, port: Number(port), localAddress: options.localAddress ?? '127.0.0.2' }, () => {
      if (options.partial) socket.write('POST /v1/resize HTTP/1.1\r\nHost: x\r\n');
    });
    socket.on('error', () => {});
    socket.on('data', () => {});
    sockets.push(socket);
  }
  return {
    stop: () => {
      for (const s of sockets) s.destroy();
    },
  };
}

/** Runs `request` over and over, `concurrency` at a time, until stopped. */
export function repeat(request: (signal: AbortSignal) => Promise<unknown>, concurrency = 1): Attack & { readonly sent: () => number } {
  const controller = new AbortController();
  let sent = 0;
  const loop = async (): Promise<void> => {
    while (!controller.signal.aborted) {
      sent++;
      await request(controller.signal).catch(() => undefined);
    }
  };
  for (let i = 0; i < concurrency; i++) void loop();
  return { stop: () => controller.abort(), sent: () => sent };
}

/** What {@link send} sends. */
export interface SendOptions {
  method?: string;
  body?: Buffer | string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** @default '127.0.0.2' */
  localAddress?: string;
}

/** Keep-alive connections of the hostile client, per local address (a real client reuses its connections). */
const agent = new Agent({ keepAlive: true });

/**
 * One request from another client than the well-behaved one (`localAddress`, 127.0.0.2 by
 * default: `fetch` cannot choose its source address): resolves with the status and body.
 */
export function send(url: string, options: SendOptions = {}): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: options.method ?? 'GET',
      headers: { ...options.headers, ...(options.body !== undefined && { 'content-length': String(Buffer.byteLength(options.body)) }) },
      localAddress: options.localAddress ?? '127.0.0.2',
      agent,
      signal: options.signal,
    });
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.once('error', reject);
    });
    req.end(options.body);
  });
}

const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="4000"><rect width="4000" height="4000"/></svg>';
const JUNK_TARGETS = ['/metrics', '/%6detrics', '/gateway/stats', '/v1/%2e%2e/metrics', '/readyz', '//metrics'];

/**
 * Cheap hostile requests as fast as `concurrency` loops allow: operational paths and
 * their encodings on the public port, SVG and PDF bodies, forged forwarding headers.
 */
export function junk(url: string, concurrency = 4): Attack & { readonly sent: () => number } {
  let i = 0;
  return repeat(async (signal) => {
    const n = i++;
    const forged = { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6' };
    await (n % 3 === 0
      ? send(`${url}${JUNK_TARGETS[n % JUNK_TARGETS.length]}`, { signal, headers: forged })
      : send(`${url}/v1/resize?width=16`, {
          method: 'POST',
          body: n % 3 === 1 ? SVG : '%PDF-1.7\n',
          headers: { 'content-type': 'image/svg+xml', ...forged },
          signal,
        }));
  }, concurrency);
}
