/**
 * The framework-free half of the HTTP middleware (`./hono`, `./express`, `./fastify`):
 * validated settings, the answers to shed and rate-limited requests, and the IETF
 * `RateLimit-Policy` / `RateLimit` header values (draft-ietf-httpapi-ratelimit-headers).
 * Each adapter only maps its framework's request and response onto these.
 */
import { type ErrorAnswer, errorAnswer, func, InvalidOptionError, retryAfterSeconds } from '@ballast/common';
import type { BackpressureErrorCode, ShedError } from './errors.ts';
import type { ConcurrencyLimiter } from './limiter.ts';
import type { RateLimitDecision, RateLimiter, RateLimitPolicy } from './rate-limit.ts';
import type { Priority } from './wait-queue.ts';

/**
 * Options of `admissionControl()`, the same in every adapter. `Req` is what the
 * framework hands its middleware (Hono's `Context`, the Express or Fastify request),
 * `OnRejected` the framework's shape of the rejection hook.
 */
export interface AdmissionControlOptionsOf<Req, OnRejected> {
  /** The limiter, or a function choosing one per request (per route, per tenant). Share it across requests. */
  limiter: ConcurrencyLimiter | ((request: Req) => ConcurrencyLimiter);
  /** The priority of a request. @default () => 'normal' */
  priority?: (request: Req) => Priority;
  /** Which answers signal overload to the adaptive limit, by status. @default status 503 or 504 */
  isDropped?: (status: number) => boolean;
  /** Answers a shed request. @default 503 with `Retry-After` and the JSON body `{ error: { code, message, reason } }` */
  onRejected?: OnRejected;
}

/** Options of `rateLimit()`, the same in every adapter (see {@link AdmissionControlOptionsOf} for `Req` and `OnRejected`). */
export interface RateLimitMiddlewareOptionsOf<Req, OnRejected> {
  /** A `KeyedRateLimiter`, `RedisRateLimiter` or your own {@link RateLimiter}. */
  limiter: RateLimiter;
  /** The key to limit by: tenant, API key, client IP. @default () => 'global' (one shared limit) */
  key?: (request: Req) => string | Promise<string>;
  /** Units of quota the request costs. @default () => 1 */
  cost?: (request: Req) => number;
  /** Add `RateLimit-Policy` and `RateLimit` headers to every answer, not only to 429s. @default true */
  headers?: boolean;
  /** Answers a limited request. @default 429 with `Retry-After`, the RateLimit headers and the JSON body `{ error: { code, message, reason } }` */
  onRejected?: OnRejected;
}

/** {@link AdmissionControlOptionsOf}, validated, with its defaults. */
export interface AdmissionSettings<Req, OnRejected> {
  /** The limiter of a request. */
  readonly limiterOf: (request: Req) => ConcurrencyLimiter;
  /** The priority of a request, or undefined for `normal`. */
  readonly priority: ((request: Req) => Priority) | undefined;
  readonly isDropped: (status: number) => boolean;
  readonly onRejected: OnRejected | undefined;
}

/** {@link RateLimitMiddlewareOptionsOf}, validated, with its defaults. */
export interface RateLimitSettings<Req, OnRejected> {
  readonly limiter: RateLimiter;
  readonly key: (request: Req) => string | Promise<string>;
  readonly cost: (request: Req) => number;
  readonly headers: boolean;
  /** The `RateLimit-Policy` value, computed once. */
  readonly policyHeader: string;
  readonly onRejected: OnRejected | undefined;
}

const defaultIsDropped = (status: number): boolean => status === 503 || status === 504;
const globalKey = (): string => 'global';
const unitCost = (): number => 1;

function optionalFunc<T>(option: string, value: unknown): T | undefined {
  return value === undefined ? undefined : (func(option, value) as T);
}

/**
 * Validates the options of `admissionControl()`.
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function admissionSettings<Req, OnRejected>(
  options: AdmissionControlOptionsOf<Req, OnRejected>,
): AdmissionSettings<Req, OnRejected> {
  const limiter = (options as Partial<AdmissionControlOptionsOf<Req, OnRejected>> | undefined)?.limiter;
  let limiterOf: (request: Req) => ConcurrencyLimiter;
  if (typeof limiter === 'function') limiterOf = limiter;
  else if (typeof limiter?.acquire === 'function') limiterOf = () => limiter;
  else throw new InvalidOptionError('limiter', 'a ConcurrencyLimiter or a function of the request returning one', limiter);
  return {
    limiterOf,
    priority: optionalFunc('priority', options.priority),
    isDropped: optionalFunc('isDropped', options.isDropped) ?? defaultIsDropped,
    onRejected: optionalFunc<OnRejected>('onRejected', options.onRejected),
  };
}

/**
 * Validates the options of `rateLimit()`.
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function rateLimitSettings<Req, OnRejected>(
  options: RateLimitMiddlewareOptionsOf<Req, OnRejected>,
): RateLimitSettings<Req, OnRejected> {
  const limiter = (options as Partial<RateLimitMiddlewareOptionsOf<Req, OnRejected>> | undefined)?.limiter;
  if (typeof limiter?.consume !== 'function' || typeof limiter.policy !== 'object' || limiter.policy === null) {
    throw new InvalidOptionError(
      'limiter',
      'a RateLimiter (KeyedRateLimiter, RedisRateLimiter, or an object with consume() and policy)',
      limiter,
    );
  }
  if (options.headers !== undefined && typeof options.headers !== 'boolean') {
    throw new InvalidOptionError('headers', 'a boolean', options.headers);
  }
  return {
    limiter,
    key: optionalFunc('key', options.key) ?? globalKey,
    cost: optionalFunc('cost', options.cost) ?? unitCost,
    headers: options.headers ?? true,
    policyHeader: rateLimitPolicyHeader(limiter.policy),
    onRejected: optionalFunc<OnRejected>('onRejected', options.onRejected),
  };
}

function quote(name: string): string {
  return `"${name.replace(/["\\]/g, '\\$&')}"`;
}

/** The IETF `RateLimit-Policy` header value, e.g. `"default";q=100;w=60`. */
export function rateLimitPolicyHeader(policy: RateLimitPolicy): string {
  return `${quote(policy.name)};q=${Math.floor(policy.limit)};w=${Math.max(1, Math.ceil(policy.windowMs / 1000))}`;
}

/** The IETF `RateLimit` header value, e.g. `"default";r=42;t=12`. */
export function rateLimitHeader(policy: RateLimitPolicy, decision: RateLimitDecision): string {
  return `${quote(policy.name)};r=${Math.max(0, Math.floor(decision.remaining))};t=${Math.max(0, Math.ceil(decision.resetMs / 1000))}`;
}

/**
 * A list field with one more member: `value` alone, or after what the header held
 * (several `rateLimit()` layers each list their policy in the same two fields).
 */
export function appendToList(previous: string | number | readonly string[] | undefined | null, value: string): string {
  if (previous === undefined || previous === null || previous === '') return value;
  return `${Array.isArray(previous) ? previous.join(', ') : String(previous)}, ${value}`;
}

/** The default answer to a shed request: 503, `Retry-After`, `{ error: { code, message, reason } }`. */
export function shedAnswer(error: ShedError): ErrorAnswer<BackpressureErrorCode> {
  return errorAnswer(
    503,
    error.code,
    error.message,
    { 'Retry-After': String(retryAfterSeconds(error.retryAfterMs)) },
    { reason: error.reason },
  );
}

/**
 * The default answer to a rate-limited request: 429, `Retry-After`, `{ error: { code,
 * message, reason } }`. The RateLimit fields are appended to the response by the adapter.
 */
export function rateLimitedAnswer(decision: RateLimitDecision): ErrorAnswer<BackpressureErrorCode> {
  return errorAnswer(
    429,
    'ERR_BALLAST_SHED',
    'request shed: rateLimited',
    { 'Retry-After': String(retryAfterSeconds(decision.retryAfterMs)) },
    { reason: 'rateLimited' },
  );
}
