import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';

/** A Hono app listening on a port. */
export interface Listening extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /**
   * Stops accepting connections and closes idle ones at once; requests in flight get
   * `graceMs` to finish before their connections are closed. Resolves when the server
   * has closed.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Serves `fetch` on `host:port` (port 0: a free one) and resolves once listening.
 * Shared by every service of the reference system.
 */
export function listen(fetch: (request: Request) => Response | Promise<Response>, port = 0, host = '127.0.0.1'): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port, hostname: host }, (info: AddressInfo) => {
      const http = server as unknown as { closeIdleConnections?: () => void; closeAllConnections?: () => void };
      const close = (graceMs = 5000): Promise<void> =>
        new Promise<void>((done) => {
          const timer = setTimeout(() => http.closeAllConnections?.(), graceMs);
          timer.unref();
          server.close(() => {
            clearTimeout(timer);
            done();
          });
          http.closeIdleConnections?.();
        });
      resolve({ url: `http://${host}:${info.port}`, port: info.port, close, [Symbol.asyncDispose]: () => close() });
    });
    server.once('error', reject);
  });
}
