import { HttpError, retryAfter } from '@ballast/app-shared';
import { durationMs, integer } from '@ballast/common';
import type { MiddlewareHandler } from 'hono';
import type { GatewayEnv } from './middleware.ts';

/** A snapshot of {@link RefusalMemory}. */
export interface RefusalMemoryStats {
  /** Refusals remembered now. */
  remembered: number;
  /** Requests answered 429 from memory, without reading their body or reaching an API server. */
  refused: number;
}

/**
 * What the API servers refused a client (429 with `Retry-After`), remembered per client,
 * credentials and request target until the time they gave: the same request from the same
 * client is answered again at the gateway, before its body is read. A client that ignores
 * `Retry-After` and repeats a refused request back to back (a costly conversion over its
 * share, say) then costs the gateway a lookup instead of a body, a proxied request and an
 * API server's work. At most `maxEntries` are kept (the oldest go first), each at most
 * `maxHoldMs`.
 */
export class RefusalMemory {
  readonly maxEntries: number;
  readonly maxHoldMs: number;
  readonly #until = new Map<string, number>();
  readonly #now: () => number;
  #refused = 0;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: { maxEntries?: number; maxHoldMs?: number; now?: () => number } = {}) {
    this.maxEntries = integer('maxEntries', options.maxEntries ?? 10_000, { min: 1 });
    this.maxHoldMs = durationMs('maxHoldMs', options.maxHoldMs ?? 30_000);
    this.#now = options.now ?? Date.now;
  }

  /** How much longer `key` stays refused, ms (0: not refused). */
  remainingMs(key: string): number {
    const until = this.#until.get(key);
    if (until === undefined) return 0;
    const left = until - this.#now();
    if (left > 0) return left;
    this.#until.delete(key);
    return 0;
  }

  /** Remembers that `key` was refused for `ms` (bounded by `maxHoldMs`). */
  remember(key: string, ms: number): void {
    const hold = Math.min(ms, this.maxHoldMs);
    if (!(hold > 0)) return;
    this.#until.delete(key); // re-inserted last: the map's order is the order of expiry, roughly
    if (this.#until.size >= this.maxEntries) {
      const oldest = this.#until.keys().next().value;
      if (oldest !== undefined) this.#until.delete(oldest);
    }
    this.#until.set(key, this.#now() + hold);
  }

  /** Counts a request answered from memory. */
  counted(): void {
    this.#refused++;
  }

  stats(): RefusalMemoryStats {
    return { remembered: this.#until.size, refused: this.#refused };
  }
}

/** The delay a `Retry-After` header asks for, ms (seconds only; 0 when absent or malformed). */
export function retryAfterMs(value: string | number | string[] | undefined): number {
  const text = Array.isArray(value) ? value[0] : value === undefined ? undefined : String(value);
  if (text === undefined || !/^\d{1,6}$/.test(text.trim())) return 0;
  return Number(text.trim()) * 1000;
}

/**
 * Answers a request the API servers refused this client moments ago (the same method,
 * target and credentials) with 429 `ERR_BALLAST_CLIENT_LIMIT` until the `Retry-After`
 * they gave has passed, and remembers the refusals the API servers give.
 */
export const rememberRefusals = (memory: RefusalMemory): MiddlewareHandler<GatewayEnv> =>
  async function rememberRefusals(c, next) {
    const target = c.env?.incoming?.url ?? c.req.url;
    const key = `${c.var.client} ${c.req.method} ${target} ${(c.req.header('authorization') ?? '').slice(0, 128)}`;
    const left = memory.remainingMs(key);
    if (left > 0) {
      memory.counted();
      throw new HttpError(
        429,
        'ERR_BALLAST_CLIENT_LIMIT',
        'this request was refused for this client moments ago: retry after the time given',
        { 'retry-after': retryAfter(left) },
      );
    }
    await next();
    const answer = c.var.answer;
    if (answer?.status === 429) memory.remember(key, answer.retryAfterMs);
  };
