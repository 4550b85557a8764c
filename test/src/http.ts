/**
 * Real HTTP on loopback for adapter tests: a server on a free port, and a client that
 * opens one connection per request (no pooling, so a request can be abandoned without
 * touching the others).
 */
import { createServer, request as httpRequest, type IncomingHttpHeaders, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { vi } from 'vitest';

/** A server listening on a free loopback port. */
export interface Listening {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** Stops listening and cuts every connection. */
  close(): Promise<void>;
}

/** Serves `listener` (an Express app, a `(req, res)` handler) or `server` on 127.0.0.1, on a free port. */
export async function listen(handler: RequestListener | Server): Promise<Listening> {
  const server = typeof handler === 'function' ? createServer(handler) : handler;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A response as the client read it. */
export interface ClientResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** `body` parsed as JSON (throws when it is not). */
  json(): unknown;
}

/** A request in flight that the client can walk away from. */
export interface OpenRequest {
  /** The response, or the client's error (after `abandon()`, say). */
  readonly response: Promise<ClientResponse>;
  /** Destroys the client's connection, as a client that gives up does. */
  abandon(): void;
}

/** Options of {@link send} and {@link open}. */
export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
}

/** Sends one request on its own connection; the body is sent whole. */
export function open(url: string, options: RequestOptions = {}): OpenRequest {
  const target = new URL(url);
  const req = httpRequest({
    host: target.hostname,
    port: target.port,
    path: target.pathname + target.search,
    method: options.method ?? 'GET',
    headers: options.headers,
    agent: false,
  });
  const response = new Promise<ClientResponse>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
      });
    });
  });
  // An abandoned request's rejection is expected; callers that care await `response`.
  response.catch(() => {});
  req.end(options.body);
  return { response, abandon: () => req.destroy() };
}

/** Sends one request on its own connection and reads the whole response. */
export function send(url: string, options: RequestOptions = {}): Promise<ClientResponse> {
  return open(url, options).response;
}

/** A promise with its resolve function, for handlers that wait until a test lets them go. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/**
 * Retries `check` until it stops throwing, for conditions a real server reaches on its
 * own time (a slot released, a request queued); generous, since a loaded machine is slow.
 */
export function eventually<T>(check: () => T | Promise<T>, timeoutMs = 15_000): Promise<T> {
  return vi.waitFor(check, { timeout: timeoutMs, interval: 10 });
}
