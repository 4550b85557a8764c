import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { durationMs, integer } from '@ballast/common';
import { serve } from '@hono/node-server';
import type { NodeBindings } from './http.ts';

/**
 * What one connection may cost a server. The defaults are an edge proxy's: a client that
 * sends nothing, or stalls between requests, is disconnected within seconds.
 */
export interface ServerLimits {
  /** Time for a request's headers from the first byte (or the connection's start), ms; then 408 and close. @default 10000 */
  headersTimeoutMs?: number;
  /**
   * Time for a whole request, headers and body, ms; then 408 and close. Bodies also have
   * their own rate and time limits where they are read. @default 60000
   */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection is closed after this, ms. @default 5000 */
  idleTimeoutMs?: number;
  /** Connections held at once; beyond it new ones are closed at once. @default 4096 */
  maxConnections?: number;
  /**
   * Connections one client address may hold at once; beyond it its new ones are closed at
   * once, so one client cannot take every connection. Behind a proxy every client shares
   * the proxy's address: raise it there. @default 256
   */
  maxConnectionsPerClient?: number;
}

/** Validated {@link ServerLimits}. */
export type ResolvedServerLimits = Required<ServerLimits>;

/** Validates {@link ServerLimits} and fills in the defaults. */
export function resolveServerLimits(limits: ServerLimits = {}): ResolvedServerLimits {
  const headersTimeoutMs = durationMs('headersTimeoutMs', limits.headersTimeoutMs ?? 10_000, { min: 100 });
  return {
    headersTimeoutMs,
    requestTimeoutMs: durationMs('requestTimeoutMs', limits.requestTimeoutMs ?? 60_000, { min: headersTimeoutMs }),
    idleTimeoutMs: durationMs('idleTimeoutMs', limits.idleTimeoutMs ?? 5000, { min: 1 }),
    maxConnections: integer('maxConnections', limits.maxConnections ?? 4096, { min: 1 }),
    maxConnectionsPerClient: integer('maxConnectionsPerClient', limits.maxConnectionsPerClient ?? 256, { min: 1 }),
  };
}

/** Where and how to listen. */
export interface ListenOptions extends ServerLimits {
  /** Port; 0 for a free one. @default 0 */
  port?: number;
  /** Address. @default '127.0.0.1' */
  host?: string;
}

/** A Hono app listening on a port. */
export interface Listening extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /** Node's server (connection counts, extra listeners). */
  readonly server: Server;
  /**
   * Stops accepting connections and closes idle ones at once; requests in flight get
   * `graceMs` to finish before their connections are closed. Resolves when the server
   * has closed.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Serves `fetch` on `host:port` under @hono/node-server, with {@link ServerLimits}
 * enforced by Node (checked every second), and resolves once listening. Every service
 * of the reference system listens through this.
 */
export function listen(
  fetch: (request: Request, env?: NodeBindings) => Response | Promise<Response>,
  options: ListenOptions = {},
): Promise<Listening> {
  const host = options.host ?? '127.0.0.1';
  return new Promise((resolve, reject) => {
    const limits = resolveServerLimits(options);
    const server = serve(
      {
        // Served over HTTP/1.1 only: the bindings are always Node's IncomingMessage and ServerResponse.
        fetch: fetch as Parameters<typeof serve>[0]['fetch'],
        port: options.port ?? 0,
        hostname: host,
        serverOptions: {
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: limits.requestTimeoutMs,
          keepAliveTimeout: limits.idleTimeoutMs,
          connectionsCheckingInterval: 1000,
        },
      },
      (info: AddressInfo) => {
        const http = server as Server;
        http.maxConnections = limits.maxConnections;
        limitPerClient(http, limits.maxConnectionsPerClient);
        const close = (graceMs = 5000): Promise<void> =>
          new Promise<void>((done) => {
            const timer = setTimeout(() => http.closeAllConnections(), graceMs);
            timer.unref();
            // Connections whose last request finishes during the grace period close as they go idle.
            const sweep = setInterval(() => http.closeIdleConnections(), 50);
            sweep.unref();
            http.close(() => {
              clearTimeout(timer);
              clearInterval(sweep);
              done();
            });
            http.closeIdleConnections();
          });
        const shown = host.includes(':') ? `[${host}]` : host;
        resolve({ url: `http://${shown}:${info.port}`, port: info.port, server: http, close, [Symbol.asyncDispose]: () => close() });
      },
    );
    server.once('error', reject);
  });
}

/** Closes a new connection at once when its client address already holds `limit`. */
function limitPerClient(server: Server, limit: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? '';
    const count = (open.get(client) ?? 0) + 1;
    if (count > limit) {
      socket.destroy();
      return;
    }
    open.set(client, count);
    socket.once('close', () => {
      const left = (open.get(client) ?? 1) - 1;
      if (left > 0) open.set(client, left);
      else open.delete(client);
    });
  });
}
