import { seededRandom } from '@ballast/common';
import type { EndpointInput, LoadBalancer } from '../index.ts';

/** A seeded random source, so distribution tests repeat exactly. */
export function seeded(seed = 42): () => number {
  return seededRandom(seed);
}

/** A clock the test moves by hand. */
export function manualClock(start = 0): { now(): number; advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

/** Endpoints `a`, `b`, `c`… with the given weights (default one each). */
export function endpoints(count: number, weights: number[] = []): EndpointInput[] {
  return Array.from({ length: count }, (_, i) => ({
    id: String.fromCharCode(97 + i),
    address: `http://127.0.0.1:${8081 + i}`,
    weight: weights[i] ?? 1,
  }));
}

/** Picks `n` times (each released at once with `ok`) and returns the ids in order. */
export function sequence(lb: LoadBalancer, n: number, ok = true): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const h = lb.pick();
    ids.push(h.endpoint.id);
    h.done({ ok, latencyMs: 1 });
  }
  return ids;
}

/** How many of `ids` are each id. */
export function tally(ids: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const id of ids) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}
