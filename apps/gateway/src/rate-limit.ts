import { HttpError, retryAfter } from '@ballast/app-shared';
import { KeyedRateLimiter } from '@ballast/backpressure';
import { finiteNumber, integer } from '@ballast/common';
import type { MiddlewareHandler } from 'hono';
import type { GatewayEnv } from './middleware.ts';

/** The request rate one client address may send (see `GatewayOptions.rateLimit`). */
export interface ClientRateLimitOptions {
  /** Requests per second one address may send, sustained. @default 100 */
  perSec?: number;
  /** Requests one address may send back to back after a pause. @default 2 × perSec */
  burst?: number;
  /**
   * Addresses tracked at once; beyond it the least recently seen is forgotten (and starts
   * again with a full burst): bounds the memory a flood of addresses can take. @default 100000
   */
  maxClients?: number;
}

/** {@link ClientRateLimitOptions} validated, defaults filled in. */
export type ResolvedClientRateLimit = Required<ClientRateLimitOptions>;

/**
 * Validates {@link ClientRateLimitOptions}; `false` (or `perSec: 0`) turns the limit off.
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function resolveClientRateLimit(options: ClientRateLimitOptions | false | undefined): ResolvedClientRateLimit | false {
  if (options === false) return false;
  const perSec = finiteNumber('rateLimit.perSec', options?.perSec ?? 100, { min: 0 });
  if (perSec === 0) return false;
  return {
    perSec,
    burst: integer('rateLimit.burst', options?.burst ?? Math.max(1, Math.ceil(2 * perSec)), { min: 1 }),
    maxClients: integer('rateLimit.maxClients', options?.maxClients ?? 100_000, { min: 1 }),
  };
}

/** One GCRA state per client address, at most `maxClients` of them (least recently seen forgotten first). */
export function clientRateLimiter(o: ResolvedClientRateLimit): KeyedRateLimiter {
  return new KeyedRateLimiter({ name: 'per-client', limit: o.perSec, windowMs: 1000, burst: o.burst, maxKeys: o.maxClients });
}

/**
 * Answers a client address over its request rate 429 `ERR_BALLAST_RATE_LIMITED` with
 * `Retry-After`, before anything else is done for it: junk (unknown paths, refused
 * formats) counts like any request, so one address flooding the gateway is turned away
 * for the cost of a lookup, and every other address keeps its own rate. O(1) per request.
 */
export const rateLimitClients = (limiter: KeyedRateLimiter, onLimited: () => void): MiddlewareHandler<GatewayEnv> =>
  async function rateLimitClients(c, next) {
    const decision = limiter.consume(c.var.client);
    if (!decision.allowed) {
      onLimited();
      throw new HttpError(429, 'ERR_BALLAST_RATE_LIMITED', `this address sends more than ${limiter.policy.limit} requests per second`, {
        'retry-after': retryAfter(decision.retryAfterMs),
      });
    }
    await next();
  };
