// Shared from @ballast/common and named in this package's README: importable from here, so strict
// installs (pnpm, npm --install-strategy=linked) need no direct @ballast/common dependency.
export { BallastError, InvalidOptionError, isBallastError, isInvalidOptionError } from '@ballast/common';
export { idealMovement, type LoadBalance, loadBalance, type Movement, movement } from './analysis.ts';
export { type BoundedLoadEvents, type BoundedLoadOptions, BoundedLoadPartitioner } from './bounded-load.ts';
export { ConsistentHashAdapter, type ConsistentHashAdapterOptions } from './consistent-hash-adapter.ts';
export { type CreatePartitionerOptions, createPartitioner, restorePartitioner } from './create.ts';
export {
  DuplicateNodeError,
  EmptyPartitionerError,
  isPartitioningError,
  JumpRemoveNotLastError,
  NotEnoughNodesError,
  PartitioningError,
  type PartitioningErrorCode,
  UnknownNodeError,
} from './errors.ts';
export { fmix32, type HashFunction, murmur3 } from './hash.ts';
export { type JumpOptions, JumpPartitioner, jumpHash } from './jump.ts';
export {
  defaultTableSize,
  type MaglevEvents,
  type MaglevOptions,
  MaglevPartitioner,
  type MaglevRebuild,
  type MaglevRebuiltEvent,
  type MaglevStats,
} from './maglev.ts';
export {
  BasePartitioner,
  type NodeEntry,
  type NodeInput,
  type Partitioner,
  type PartitionerEvents,
  type PartitionerOptions,
  type PartitionerState,
  type PartitionerStats,
  type PartitionStrategy,
} from './partitioner.ts';
export { type RendezvousOptions, RendezvousPartitioner } from './rendezvous.ts';
export { DEFAULT_VNODES, type RingOptions, RingPartitioner } from './ring.ts';
