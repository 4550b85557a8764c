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
import type { ShedError } from './errors.ts';
import {
  type AdmissionControlOptionsOf,
  admissionSettings,
  appendToList,
  type RateLimitMiddlewareOptionsOf,
  rateLimitedAnswer,
  rateLimitHeader,
  rateLimitSettings,
  shedAnswer,
} from './http.ts';
import { admitNodeRequest } from './node-admission.ts';
import type { RateLimitDecision } from './rate-limit.ts';

/** Options of {@link admissionControl}: `onRejected(request, reply, error)` sends the answer. */
export type AdmissionControlOptions = AdmissionControlOptionsOf<
  FastifyRequest,
  (request: FastifyRequest, reply: FastifyReply, error: ShedError) => void | Promise<void>
>;

/** Options of {@link rateLimit}: `onRejected(request, reply, decision)` sends the answer. */
export type RateLimitMiddlewareOptions = RateLimitMiddlewareOptionsOf<
  FastifyRequest,
  (request: FastifyRequest, reply: FastifyReply, decision: RateLimitDecision) => void | Promise<void>
>;

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
  const { limiterOf, priority, isDropped, onRejected } = admissionSettings(options);
  return plugin(async function admissionControl(request, reply) {
    const admission = await admitNodeRequest(limiterOf(request), priority?.(request) ?? 'normal', reply.raw, isDropped);
    if (admission === 'admitted') return;
    if (admission === 'gone') {
      // Nobody to answer: stop here without writing to the closed connection.
      reply.hijack();
      return reply;
    }
    if (onRejected) {
      await onRejected(request, reply, admission);
      return reply;
    }
    const answer = shedAnswer(admission);
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
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
  const { limiter, key, cost, headers, policyHeader, onRejected } = rateLimitSettings(options);
  const append = (reply: FastifyReply, decision: RateLimitDecision): void => {
    reply.header('RateLimit-Policy', appendToList(reply.getHeader('RateLimit-Policy'), policyHeader));
    reply.header('RateLimit', appendToList(reply.getHeader('RateLimit'), rateLimitHeader(limiter.policy, decision)));
  };
  return plugin(async function rateLimit(request, reply) {
    const decision = await limiter.consume(await key(request), cost(request));
    if (decision.allowed) {
      if (headers) append(reply, decision);
      return;
    }
    if (onRejected) {
      await onRejected(request, reply, decision);
      return reply;
    }
    append(reply, decision);
    const answer = rateLimitedAnswer(decision);
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  });
};

const plugin = (hook: BackpressureHook): BackpressurePlugin => hookPlugin('@ballast/backpressure', hook) as unknown as BackpressurePlugin;
