/**
 * Fastify 5 plugins: admission control (concurrency limit, 503) and rate limiting (429),
 * answering at once with `Retry-After` and the IETF `RateLimit-Policy` / `RateLimit`
 * headers. Same options, answers and error body as `@ballast/backpressure/hono`.
 *
 * Each factory returns a plugin that adds an `onRequest` hook to the context registering
 * it (and the contexts it encapsulates: not its siblings nor its parent), and carries the
 * hook as `.onRequest` for one route (`{ onRequest: limit.onRequest }`).
 */
import { hookPlugin } from '@ballast/common';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { NodeAdmissionControlOptions, NodeRateLimitOptions, NodeStepOutcome } from './node-middleware.ts';
import { nodeAdmissionStep, nodeRateLimitStep } from './node-middleware.ts';

/** Options of {@link admissionControl}: `onRejected(request, reply, error)` sends the answer. */
export type AdmissionControlOptions = NodeAdmissionControlOptions<FastifyRequest, FastifyReply>;

/** Options of {@link rateLimit}: `onRejected(request, reply, decision)` sends the answer. */
export type RateLimitMiddlewareOptions = NodeRateLimitOptions<FastifyRequest, FastifyReply>;

/** An `onRequest` hook of this package. */
export type BackpressureHook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** A plugin adding one `onRequest` hook to the context that registers it; the hook itself is `.onRequest`. */
export type BackpressurePlugin = FastifyPluginCallback & { readonly onRequest: BackpressureHook };

/**
 * Admission control by concurrency: requests beyond the limiter's limit (and queue) are
 * answered 503 with `Retry-After` at once. The slot is held until the response is over:
 * sent whole (its status, judged by `isDropped`, feeds the adaptive limit), or closed
 * first by a client that went away (the slot is freed and the limit learns nothing). A
 * queued request whose client disconnects leaves the queue at once and never runs.
 *
 * @throws {InvalidOptionError} naming the first invalid option.
 * @example
 * ```ts
 * const limiter = new ConcurrencyLimiter({ limit: new VegasLimit(), maxQueue: 100, discipline: 'adaptiveLifo' });
 * await app.register(admissionControl({ limiter }));
 * ```
 */
export const admissionControl = (options: AdmissionControlOptions): BackpressurePlugin => {
  const admit = nodeAdmissionStep(options, (reply: FastifyReply) => reply.raw);
  return plugin(async function admissionControl(request, reply) {
    return send(await admit(request, reply), reply);
  });
};

/**
 * Rate limiting per key: a request over its key's rate is answered 429 with
 * `Retry-After` at once. Answers carry the IETF `RateLimit-Policy` and `RateLimit`
 * headers (set before the handler runs, so they reach whatever it sends, error answers
 * included); several `rateLimit()` plugins each append their policy.
 *
 * @throws {InvalidOptionError} naming the first invalid option.
 * @example
 * ```ts
 * const perKey = new KeyedRateLimiter({ name: 'per-key', limit: 100, windowMs: 60_000, burst: 20 });
 * await app.register(rateLimit({ limiter: perKey, key: (request) => String(request.headers['x-api-key'] ?? 'anonymous') }));
 * ```
 */
export const rateLimit = (options: RateLimitMiddlewareOptions): BackpressurePlugin => {
  const limit = nodeRateLimitStep(options, replyHeader);
  return plugin(async function rateLimit(request, reply) {
    return send(await limit(request, reply), reply);
  });
};

const replyHeader = {
  get: (reply: FastifyReply, name: string) => reply.getHeader(name),
  set: (reply: FastifyReply, name: string, value: string): void => void reply.header(name, value),
};

/** Goes on (`undefined`), or ends the request with `reply`: sending the answer, or nothing to a client that went away. */
function send(outcome: NodeStepOutcome, reply: FastifyReply): FastifyReply | undefined {
  if (outcome === 'next') return undefined;
  // Nobody to answer: stop here without writing to the closed connection.
  if (outcome === 'gone') return reply.hijack();
  if (outcome === 'sent') return reply;
  return reply.code(outcome.status).headers(outcome.headers).send(outcome.body);
}

const plugin = (hook: BackpressureHook): BackpressurePlugin => hookPlugin('@ballast/backpressure', hook) as unknown as BackpressurePlugin;
