/**
 * Fastify 5 adapter: a heartbeat route. Same options, answers and error body as
 * `@ballast/failure-detector/hono`.
 *
 * @example
 * ```ts
 * import { HeartbeatMonitor } from '@ballast/failure-detector';
 * import { heartbeatHandler } from '@ballast/failure-detector/fastify';
 *
 * const monitor = new HeartbeatMonitor();
 * app.post('/heartbeats', heartbeatHandler(monitor));
 * ```
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { HEARTBEAT_MALFORMED, HEARTBEAT_TOO_LARGE, type HeartbeatHandlerOptionsOf, heartbeatReceiver } from './heartbeat-http.ts';
import type { HeartbeatMonitor } from './monitor.ts';

export type { HeartbeatRejectionCode } from './heartbeat-http.ts';

/** Options of {@link heartbeatHandler}: `accept(id, request)` sees the Fastify request. */
export type HeartbeatHandlerOptions = HeartbeatHandlerOptionsOf<FastifyRequest>;

/** Route options for `app.post(path, heartbeatHandler(monitor))`: the handler, its body limit and its error handler. */
export interface HeartbeatRoute {
  /** `maxBodyBytes`: Fastify refuses a larger body before parsing it. */
  readonly bodyLimit: number;
  readonly handler: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;
  /** Answers bodies Fastify could not parse (too large, not JSON, no content type) in the heartbeat's error body. */
  readonly errorHandler: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => FastifyReply;
}

/**
 * Fastify route options for `POST` heartbeats: `app.post('/heartbeats', heartbeatHandler(monitor))`.
 * Reads `{"id":"api-1","seq":42}` (as sent by `httpHeartbeatSender`; Fastify's JSON parser,
 * or text for `text/plain`) and records a heartbeat for `id` in the monitor, timed at
 * arrival on the monitor's clock.
 * @throws {InvalidOptionError} naming the first invalid option. Answers 204, or, with the body
 * `{ error: { code, message } }`, 400 for a malformed body, a missing or unparsable content
 * type (`ERR_BALLAST_HEARTBEAT_MALFORMED`), 403 when `accept` refuses
 * (`ERR_BALLAST_HEARTBEAT_REFUSED`), 413 when the body is too large
 * (`ERR_BALLAST_HEARTBEAT_TOO_LARGE`). Other errors (`accept` throwing) go to the enclosing
 * error handler.
 */
export const heartbeatHandler = (monitor: Pick<HeartbeatMonitor, 'heartbeat'>, options: HeartbeatHandlerOptions = {}): HeartbeatRoute => {
  const receiver = heartbeatReceiver(monitor, options);
  return {
    bodyLimit: receiver.maxBodyBytes,
    handler: async function heartbeatHandler(request, reply) {
      const answer = await receiver.receive(request.body, request);
      if (answer) return reply.code(answer.status).send(answer.body);
      return reply.code(204).send();
    },
    errorHandler: function heartbeatErrors(error, _request, reply) {
      // Fastify's content-type parser errors: the body never reached the handler.
      if (!error.code?.startsWith('FST_ERR_CTP_') && !(error instanceof SyntaxError)) throw error;
      const answer = error.statusCode === 413 ? HEARTBEAT_TOO_LARGE : HEARTBEAT_MALFORMED;
      return reply.code(answer.status).send(answer.body);
    },
  };
};
