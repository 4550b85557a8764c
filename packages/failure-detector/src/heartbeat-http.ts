/**
 * The framework-free half of the heartbeat endpoint (`./hono`, `./express`, `./fastify`):
 * validated options, what to do with a received body, and the error answers. Each adapter
 * only reads the body its way and sends the answer.
 */
import { type ErrorAnswer, errorAnswer, func, integer } from '@ballast/common';
import { parseHeartbeat } from './message.ts';
import type { HeartbeatMonitor } from './monitor.ts';

/** Options of `heartbeatHandler()`, the same in every adapter; `Req` is what the framework hands its handler. */
export interface HeartbeatHandlerOptionsOf<Req> {
  /**
   * Called with each valid heartbeat before it is recorded; return false to refuse it
   * with 403 (an unknown node, a bad token).
   * @default () => true
   */
  accept?: (id: string, request: Req) => boolean | Promise<boolean>;
  /**
   * Largest request body accepted, in bytes; larger ones get 413.
   * @default 4096
   */
  maxBodyBytes?: number;
}

/** The codes of the error bodies `heartbeatHandler()` answers with. */
export type HeartbeatRejectionCode =
  | 'ERR_BALLAST_HEARTBEAT_TOO_LARGE'
  | 'ERR_BALLAST_HEARTBEAT_MALFORMED'
  | 'ERR_BALLAST_HEARTBEAT_REFUSED';

/** 413: the body is over `maxBodyBytes`. */
export const HEARTBEAT_TOO_LARGE: ErrorAnswer<HeartbeatRejectionCode> = errorAnswer(
  413,
  'ERR_BALLAST_HEARTBEAT_TOO_LARGE',
  'heartbeat body too large',
);
/** 400: the body is not `{"id": string, "seq"?: number}`. */
export const HEARTBEAT_MALFORMED: ErrorAnswer<HeartbeatRejectionCode> = errorAnswer(
  400,
  'ERR_BALLAST_HEARTBEAT_MALFORMED',
  'expected a JSON body {"id": string, "seq"?: number}',
);
/** 403: `accept` refused the heartbeat. */
export const HEARTBEAT_REFUSED: ErrorAnswer<HeartbeatRejectionCode> = errorAnswer(
  403,
  'ERR_BALLAST_HEARTBEAT_REFUSED',
  'heartbeat refused',
);

/** Records what a heartbeat endpoint received; one per handler. */
export interface HeartbeatReceiver<Req> {
  /** Largest body accepted, in bytes. */
  readonly maxBodyBytes: number;
  /**
   * Records the heartbeat in `body` (JSON text, or a value a body parser produced) arriving
   * with `request`. Resolves with the error answer to send, or `undefined` for 204.
   */
  receive(body: unknown, request: Req): Promise<ErrorAnswer<HeartbeatRejectionCode> | undefined>;
}

/**
 * Validates the options and returns the receiver of `monitor`'s heartbeats. Arrival is
 * timed on the monitor's clock.
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function heartbeatReceiver<Req>(
  monitor: Pick<HeartbeatMonitor, 'heartbeat'>,
  options: HeartbeatHandlerOptionsOf<Req> = {},
): HeartbeatReceiver<Req> {
  const accept =
    options.accept === undefined ? undefined : func<NonNullable<HeartbeatHandlerOptionsOf<Req>['accept']>>('accept', options.accept);
  const maxBodyBytes = integer('maxBodyBytes', options.maxBodyBytes ?? 4096, { min: 1 });
  return {
    maxBodyBytes,
    async receive(body, request) {
      let message: ReturnType<typeof parseHeartbeat>;
      if (typeof body === 'string' || body instanceof Uint8Array) {
        const text = typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
        if (Buffer.byteLength(text) > maxBodyBytes) return HEARTBEAT_TOO_LARGE;
        try {
          message = parseHeartbeat(JSON.parse(text));
        } catch {
          message = undefined;
        }
      } else {
        message = parseHeartbeat(body);
      }
      if (message === undefined) return HEARTBEAT_MALFORMED;
      if (accept && !(await accept(message.id, request))) return HEARTBEAT_REFUSED;
      monitor.heartbeat(message.id);
      return undefined;
    },
  };
}
