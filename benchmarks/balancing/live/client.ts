/**
 * The request side of the live comparison: a keep-alive HTTP client sending GETs on
 * 127.0.0.1, labelling each outcome with the backend that served it. Requests that take
 * longer than `timeoutMs` are abandoned and reported as `timeout` with their full waiting
 * time, so a stuck backend still shows in the percentiles.
 */
import { Agent, request } from 'node:http';
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
