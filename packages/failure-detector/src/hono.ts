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
import { type ErrorBody, errorBody, func, integer } from '@ballast/common';
import type { Context, Handler } from 'hono';
import { decodeHeartbeat } from './message.ts';
import type { HeartbeatMonitor } from './monitor.ts';

/** Options of {@link heartbeatHandler}. */
export interface HeartbeatHandlerOptions {
  /**
   * Called with each valid heartbeat before it is recorded; return false to refuse it
   * with 403 (an unknown node, a bad token).
   * @default () => true
   */
  accept?: (id: string, c: Context) => boolean | Promise<boolean>;
  /**
   * Largest request body accepted, in bytes; larger ones get 413.
   * @default 4096
   */
  maxBodyBytes?: number;
}

/** The codes of the error bodies {@link heartbeatHandler} answers with. */
export type HeartbeatRejectionCode =
  | 'ERR_BALLAST_HEARTBEAT_TOO_LARGE'
  | 'ERR_BALLAST_HEARTBEAT_MALFORMED'
  | 'ERR_BALLAST_HEARTBEAT_REFUSED';

const TOO_LARGE: ErrorBody<HeartbeatRejectionCode> = errorBody('ERR_BALLAST_HEARTBEAT_TOO_LARGE', 'heartbeat body too large');
const MALFORMED: ErrorBody<HeartbeatRejectionCode> = errorBody(
  'ERR_BALLAST_HEARTBEAT_MALFORMED',
  'expected a JSON body {"id": string, "seq"?: number}',
);
const REFUSED: ErrorBody<HeartbeatRejectionCode> = errorBody('ERR_BALLAST_HEARTBEAT_REFUSED', 'heartbeat refused');

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
  const accept = options.accept === undefined ? undefined : func<NonNullable<HeartbeatHandlerOptions['accept']>>('accept', options.accept);
  const maxBodyBytes = integer('maxBodyBytes', options.maxBodyBytes ?? 4096, { min: 1 });
  return async function heartbeatHandler(c) {
    if (Number(c.req.header('content-length') ?? 0) > maxBodyBytes) return c.json(TOO_LARGE, 413);
    const text = await c.req.text();
    if (Buffer.byteLength(text) > maxBodyBytes) return c.json(TOO_LARGE, 413);
    const message = decodeHeartbeat(text);
    if (message === undefined) return c.json(MALFORMED, 400);
    if (accept && !(await accept(message.id, c))) return c.json(REFUSED, 403);
    monitor.heartbeat(message.id);
    return c.body(null, 204);
  };
};
