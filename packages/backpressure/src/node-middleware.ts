/**
 * The framework-neutral half of the Express and Fastify adapters: each `admissionControl()`
 * and `rateLimit()` there maps its framework's request and response onto one of these steps
 * and sends what it returns in its own way.
 */
import type { ErrorAnswer, NodeResponse } from '@ballast/common';
import type { ShedError } from './errors.ts';
import type { AdmissionControlOptionsOf, RateLimitMiddlewareOptionsOf } from './http.ts';
import { admissionSettings, appendToList, rateLimitedAnswer, rateLimitHeader, rateLimitSettings, shedAnswer } from './http.ts';
import { admitNodeRequest } from './node-admission.ts';
import type { RateLimitDecision } from './rate-limit.ts';

/** Options of `admissionControl()` in an adapter whose `onRejected(request, response, error)` sends the answer itself. */
export type NodeAdmissionControlOptions<Req, Res> = AdmissionControlOptionsOf<
  Req,
  (request: Req, response: Res, error: ShedError) => void | Promise<void>
>;

/** Options of `rateLimit()` in an adapter whose `onRejected(request, response, decision)` sends the answer itself. */
export type NodeRateLimitOptions<Req, Res> = RateLimitMiddlewareOptionsOf<
  Req,
  (request: Req, response: Res, decision: RateLimitDecision) => void | Promise<void>
>;

/**
 * What a step came to: the request goes on (`'next'`), nothing is to be written (`'gone'`:
 * the client went away), `onRejected` answered it (`'sent'`), or the {@link ErrorAnswer} to send.
 */
export type NodeStepOutcome = 'next' | 'gone' | 'sent' | ErrorAnswer;

/** How an adapter reads and sets a header of its response object. */
export interface HeaderAccess<Res> {
  get(response: Res, name: string): string | number | readonly string[] | undefined;
  set(response: Res, name: string, value: string): void;
}

/**
 * Admission control over a framework's request and response: `raw` gives the Node
 * `ServerResponse` whose end releases the slot.
 *
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function nodeAdmissionStep<Req, Res>(
  options: NodeAdmissionControlOptions<Req, Res>,
  raw: (response: Res) => NodeResponse,
): (request: Req, response: Res) => Promise<NodeStepOutcome> {
  const { limiterOf, priority, isDropped, onRejected } = admissionSettings(options);
  return async (request, response) => {
    const admission = await admitNodeRequest(limiterOf(request), priority?.(request) ?? 'normal', raw(response), isDropped);
    if (admission === 'admitted') return 'next';
    if (admission === 'gone') return 'gone';
    if (onRejected) {
      await onRejected(request, response, admission);
      return 'sent';
    }
    return shedAnswer(admission);
  };
}

/**
 * Rate limiting over a framework's request and response. The `RateLimit-Policy` and
 * `RateLimit` headers are appended (several layers each list their policy) before the
 * handler runs, so they reach whatever it sends, error answers included.
 *
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function nodeRateLimitStep<Req, Res>(
  options: NodeRateLimitOptions<Req, Res>,
  header: HeaderAccess<Res>,
): (request: Req, response: Res) => Promise<NodeStepOutcome> {
  const { limiter, key, cost, headers, policyHeader, onRejected } = rateLimitSettings(options);
  const append = (response: Res, decision: RateLimitDecision): void => {
    header.set(response, 'RateLimit-Policy', appendToList(header.get(response, 'RateLimit-Policy'), policyHeader));
    header.set(response, 'RateLimit', appendToList(header.get(response, 'RateLimit'), rateLimitHeader(limiter.policy, decision)));
  };
  return async (request, response) => {
    const decision = await limiter.consume(await key(request), cost(request));
    if (decision.allowed) {
      if (headers) append(response, decision);
      return 'next';
    }
    if (onRejected) {
      await onRejected(request, response, decision);
      return 'sent';
    }
    append(response, decision);
    return rateLimitedAnswer(decision);
  };
}
