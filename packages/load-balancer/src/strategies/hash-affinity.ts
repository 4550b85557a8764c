import { oneOf } from '@ballast/common';
import { BoundedLoadPartitioner, createPartitioner, type HashFunction, type Partitioner } from '@ballast/partitioning';
import type { BalancingStrategy, EndpointState, PickContext, PickOutcome } from '../types.ts';

/** Options of {@link hashAffinity}. */
export interface HashAffinityOptions {
  /**
   * How keys map to endpoints, from @ballast/partitioning:
   * - `ring`: consistent hashing (ketama-style ring with virtual nodes);
   * - `maglev`: Google's Maglev table, one lookup per key, near-perfect balance;
   * - `bounded-load`: the ring, but no endpoint takes more than `c` × its share of the
   *   requests in flight; excess keys spill to the next endpoint clockwise.
   * @default 'ring'
   */
  partitioner?: 'ring' | 'maglev' | 'bounded-load';
  /** Load bound of `bounded-load` (≥ 1). @default 1.25 */
  c?: number;
  /** Points per unit of weight on the ring (`ring`, `bounded-load`). @default 1024 */
  vnodes?: number;
  /** Maglev table size, a prime. @default chosen by @ballast/partitioning */
  tableSize?: number;
  /** Hash of keys and endpoint ids (unsigned 32-bit). @default murmur3 */
  hash?: HashFunction;
}

/** Per-endpoint state: requests sent here that the bounded-load partitioner did not count. */
class Affinity {
  uncounted = 0;
}

/**
 * Hash-based affinity: requests with the same key (client IP, user id, cache key) go
 * to the same endpoint while it is available, and only the keys of an endpoint that
 * leaves move. An unavailable owner's keys go to the next endpoint in the key's
 * preference order and come back when it returns. Requests without a key go to a
 * random endpoint.
 *
 * @example
 * ```ts
 * const lb = new LoadBalancer({ endpoints, strategy: hashAffinity({ partitioner: 'maglev' }) });
 * const handle = lb.pick({ key: clientIp });
 * ```
 */
export function hashAffinity(options: HashAffinityOptions = {}): BalancingStrategy {
  const kind = oneOf('partitioner', options.partitioner ?? 'ring', ['ring', 'maglev', 'bounded-load'] as const);
  const extra: Record<string, unknown> = {};
  for (const name of ['c', 'vnodes', 'tableSize', 'hash'] as const) if (options[name] !== undefined) extra[name] = options[name];
  const partitioner: Partitioner = createPartitioner({ strategy: kind, ...extra } as Parameters<typeof createPartitioner>[0]);
  const bounded = partitioner instanceof BoundedLoadPartitioner ? partitioner : undefined;
  const byId = new Map<string, EndpointState>();
  const weights = new Map<string, number>();
  let synced: readonly EndpointState[] | undefined;

  /**
   * Places `e` with no load counted, so the requests it has in flight (an endpoint
   * re-added before its requests finished, or re-weighted) must not be released from
   * the new placement: they become uncounted.
   */
  const place = (e: EndpointState): void => {
    partitioner.add(e.id, e.weight);
    weights.set(e.id, e.weight);
    (e.data as Affinity).uncounted = e.inFlight;
  };
  const unplace = (id: string): void => {
    partitioner.remove(id);
    weights.delete(id);
  };
  /** The `skip`-th available endpoint in the key's preference order. */
  const fallback = (key: string, skip: number): EndpointState | undefined => {
    let first: EndpointState | undefined;
    for (const id of partitioner.preferenceList(key, partitioner.size)) {
      const e = byId.get(id);
      if (!e?.eligible) continue;
      first ??= e;
      if (skip-- === 0) return e;
    }
    return first;
  };

  return {
    name: `hash-${kind}`,
    onAdd(endpoint: EndpointState): void {
      endpoint.data = new Affinity();
      byId.set(endpoint.id, endpoint);
      place(endpoint);
    },
    onRemove(endpoint: EndpointState): void {
      byId.delete(endpoint.id);
      unplace(endpoint.id);
    },
    pick(candidates: readonly EndpointState[], context: PickContext): EndpointState {
      if (candidates !== synced) {
        // A new candidate array may mean a weight changed: re-place those endpoints.
        synced = candidates;
        for (const e of candidates) {
          if (weights.get(e.id) !== e.weight) {
            unplace(e.id);
            place(e);
          }
        }
      }
      const key = context.key;
      if (key === undefined) return candidates[Math.floor(context.random() * candidates.length)] as EndpointState;
      if (context.attempt === 0) {
        const owner = byId.get(bounded ? bounded.assign(key) : partitioner.owner(key)) as EndpointState;
        if (owner.eligible) return owner;
        bounded?.release(owner.id);
      }
      const chosen = fallback(key, context.attempt) ?? (candidates[0] as EndpointState);
      if (bounded) (chosen.data as Affinity).uncounted++;
      return chosen;
    },
    onDone(endpoint: EndpointState, _outcome: PickOutcome): void {
      if (!bounded) return;
      const state = endpoint.data as Affinity;
      if (state.uncounted > 0) state.uncounted--;
      else if (bounded.has(endpoint.id) && bounded.load(endpoint.id) > 0) bounded.release(endpoint.id);
    },
    close(): void {
      (partitioner as { close?: () => void }).close?.();
    },
  };
}
