import { InvalidOptionError, oneOf } from '@ballast/common';
import { type BoundedLoadOptions, BoundedLoadPartitioner } from './bounded-load.ts';
import { ConsistentHashAdapter, type ConsistentHashAdapterOptions } from './consistent-hash-adapter.ts';
import type { HashFunction } from './hash.ts';
import { type JumpOptions, JumpPartitioner } from './jump.ts';
import { type MaglevOptions, MaglevPartitioner } from './maglev.ts';
import type { Partitioner, PartitionerState, Strategy } from './partitioner.ts';
import { type RendezvousOptions, RendezvousPartitioner } from './rendezvous.ts';
import { type RingOptions, RingPartitioner } from './ring.ts';

/** Options of {@link createPartitioner}: a `strategy` and that strategy's options. */
export type CreatePartitionerOptions =
  | ({ strategy: 'ring' } & RingOptions)
  | ({ strategy: 'jump' } & JumpOptions)
  | ({ strategy: 'rendezvous' } & RendezvousOptions)
  | ({ strategy: 'maglev' } & MaglevOptions)
  | ({ strategy: 'bounded-load' } & BoundedLoadOptions)
  | ({ strategy: 'consistent-hash' } & ConsistentHashAdapterOptions);

const STRATEGIES: readonly Strategy[] = ['ring', 'jump', 'rendezvous', 'maglev', 'bounded-load', 'consistent-hash'];

/**
 * Creates a partitioner by strategy name.
 *
 * @throws {InvalidOptionError} When the strategy or one of its options is invalid.
 * @example
 * ```ts
 * const p = createPartitioner({ strategy: 'maglev', nodes: ['a', 'b', 'c'] });
 * p.owner('user:42');
 * ```
 */
export function createPartitioner(options: CreatePartitionerOptions): Partitioner {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'an object with a strategy', options);
  const strategy = oneOf('strategy', options.strategy, STRATEGIES);
  switch (strategy) {
    case 'ring':
      return new RingPartitioner(options as RingOptions);
    case 'jump':
      return new JumpPartitioner(options as JumpOptions);
    case 'rendezvous':
      return new RendezvousPartitioner(options as RendezvousOptions);
    case 'maglev':
      return new MaglevPartitioner(options as MaglevOptions);
    case 'bounded-load':
      return new BoundedLoadPartitioner(options as BoundedLoadOptions);
    case 'consistent-hash':
      return new ConsistentHashAdapter(options as ConsistentHashAdapterOptions);
  }
}

/**
 * Rebuilds a partitioner from `toJSON()` output, whatever its strategy. Pass the same
 * `hash` as the original if it was not the default.
 *
 * @throws {InvalidOptionError} When `state` is not a valid state.
 * @example
 * ```ts
 * const copy = restorePartitioner(JSON.parse(JSON.stringify(ring)));
 * ```
 */
export function restorePartitioner(state: PartitionerState, options: { hash?: HashFunction } = {}): Partitioner {
  const strategy = oneOf('state.strategy', (state as PartitionerState | null)?.strategy, STRATEGIES);
  switch (strategy) {
    case 'ring':
      return RingPartitioner.fromJSON(state, options);
    case 'jump':
      return JumpPartitioner.fromJSON(state, options);
    case 'rendezvous':
      return RendezvousPartitioner.fromJSON(state, options);
    case 'maglev':
      return MaglevPartitioner.fromJSON(state, options);
    case 'bounded-load':
      return BoundedLoadPartitioner.fromJSON(state, options);
    case 'consistent-hash':
      return ConsistentHashAdapter.fromJSON(state);
  }
}
