import { InvalidOptionError, oneOf } from '@ballast/common';
import { type BoundedLoadOptions, BoundedLoadPartitioner } from './bounded-load.ts';
import { ConsistentHashAdapter, type ConsistentHashAdapterOptions } from './consistent-hash-adapter.ts';
import type { HashFunction } from './hash.ts';
import { type JumpOptions, JumpPartitioner } from './jump.ts';
import { type MaglevOptions, MaglevPartitioner } from './maglev.ts';
import type { Partitioner, PartitionerState, PartitionStrategy } from './partitioner.ts';
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

/** Each strategy's class: built with its options, restored with its static `fromJSON`. */
const CLASSES: {
  [S in PartitionStrategy]: {
    new (options: never): Partitioner;
    fromJSON(state: PartitionerState, options?: { hash?: HashFunction }): Partitioner;
  };
} = {
  ring: RingPartitioner,
  jump: JumpPartitioner,
  rendezvous: RendezvousPartitioner,
  maglev: MaglevPartitioner,
  'bounded-load': BoundedLoadPartitioner,
  'consistent-hash': ConsistentHashAdapter,
};
const STRATEGIES = Object.keys(CLASSES) as PartitionStrategy[];

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
  const Class = CLASSES[oneOf('strategy', options.strategy, STRATEGIES)] as unknown as new (
    options: CreatePartitionerOptions,
  ) => Partitioner;
  return new Class(options);
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
  if (state === null || typeof state !== 'object') {
    throw new InvalidOptionError('state', 'a PartitionerState from toJSON() (version 1)', state);
  }
  return CLASSES[oneOf('state.strategy', state.strategy, STRATEGIES)].fromJSON(state, options);
}
