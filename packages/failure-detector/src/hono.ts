/**
 * Hono adapter: a route handler that receives heartbeats over HTTP.
 *
 * @example
 * ```ts
 * import { HeartbeatMonitor } from '@ballast/failure-detector';
 * import { heartbeatHandler } from '@ballast/failure-detector/hono';
 *
 * const monitor = new HeartbeatMonitor();
 * app.post('/heartbeats', heartbeatHandler(monitor));
 * ```
 */
import type { Context, Handler } from 'hono';
import { HEARTBEAT_TOO_LARGE, type HeartbeatHandlerOptionsOf, heartbeatReceiver } from './heartbeat-http.ts';
import type { HeartbeatMonitor } from './monitor.ts';

export type { HeartbeatRejectionCode } from './heartbeat-http.ts';

/** Options of {@link heartbeatHandler}: `accept(id, c)` sees the Hono context. */
export type HeartbeatHandlerOptions = HeartbeatHandlerOptionsOf<Context>;

/**
 * A Hono handler for `POST` heartbeats: reads `{"id":"api-1","seq":42}` (as sent by
 * `httpHeartbeatSender`) and records a heartbeat for `id` in the monitor, timed at
 * arrival on the monitor's clock.
 * @throws {InvalidOptionError} naming the first invalid option. Answers 204, or, with the body
 * `{ error: { code, message } }`, 400 for a malformed body (`ERR_BALLAST_HEARTBEAT_MALFORMED`),
 * 403 when `accept` refuses (`ERR_BALLAST_HEARTBEAT_REFUSED`), 413 when the body is too large
 * (`ERR_BALLAST_HEARTBEAT_TOO_LARGE`).
 */
export const heartbeatHandler = (monitor: Pick<HeartbeatMonitor, 'heartbeat'>, options: HeartbeatHandlerOptions = {}): Handler => {
  const receiver = heartbeatReceiver(monitor, options);
  return async function heartbeatHandler(c) {
    const answer =
      Number(c.req.header('content-length') ?? 0) > receiver.maxBodyBytes
        ? HEARTBEAT_TOO_LARGE
        : await receiver.receive(await c.req.text(), c);
    if (answer) return c.json(answer.body, answer.status as 400);
    return c.body(null, 204);
  };
};
