import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';

/** A Hono app listening on a port. */
export interface Listening extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /** Stops accepting connections and closes idle ones; resolves when the server has closed. */
  close(): Promise<void>;
}

/**
 * Serves `fetch` on `host:port` (port 0: a free one) and resolves once listening.
 * Shared by every service of the reference system.
 */
export function listen(fetch: (request: Request) => Response | Promise<Response>, port = 0, host = '127.0.0.1'): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port, hostname: host }, (info: AddressInfo) => {
      const close = (): Promise<void> =>
        new Promise<void>((done) => {
          server.close(() => done());
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        });
      resolve({ url: `http://${host}:${info.port}`, port: info.port, close, [Symbol.asyncDispose]: close });
    });
    server.once('error', reject);
  });
}
