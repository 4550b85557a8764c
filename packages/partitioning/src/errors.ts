import { BallastError, isBallastError, withoutStack } from '@ballast/common';

/** Stable codes of the errors thrown by `@ballast/partitioning`. */
export type PartitioningErrorCode =
  | 'ERR_BALLAST_DUPLICATE_NODE'
  | 'ERR_BALLAST_UNKNOWN_NODE'
  | 'ERR_BALLAST_EMPTY_PARTITIONER'
  | 'ERR_BALLAST_NOT_ENOUGH_NODES'
  | 'ERR_BALLAST_JUMP_REMOVE_NOT_LAST';

const CODES: ReadonlySet<string> = new Set<PartitioningErrorCode>([
  'ERR_BALLAST_DUPLICATE_NODE',
  'ERR_BALLAST_UNKNOWN_NODE',
  'ERR_BALLAST_EMPTY_PARTITIONER',
  'ERR_BALLAST_NOT_ENOUGH_NODES',
  'ERR_BALLAST_JUMP_REMOVE_NOT_LAST',
]);

/** Base class of the errors about nodes and lookups; option errors are `InvalidOptionError`. */
export class PartitioningError extends BallastError {
  declare readonly code: PartitioningErrorCode;
}

/** `add()` was given a node that is already present. */
export class DuplicateNodeError extends PartitioningError {
  /** The node that was already present. */
  readonly node: string;
  constructor(node: string) {
    super('ERR_BALLAST_DUPLICATE_NODE', `node ${JSON.stringify(node)} is already present`);
    this.node = node;
  }
}

/** `remove()`, `load()` or `release()` was given a node that is not present. */
export class UnknownNodeError extends PartitioningError {
  /** The node that was not found. */
  readonly node: string;
  constructor(node: string) {
    super('ERR_BALLAST_UNKNOWN_NODE', `node ${JSON.stringify(node)} is not present`);
    this.node = node;
  }
}

/** A key was looked up while the partitioner has no node. */
export class EmptyPartitionerError extends PartitioningError {
  constructor() {
    super('ERR_BALLAST_EMPTY_PARTITIONER', 'cannot look up a key: the partitioner has no node');
  }
}

/** `preferenceList(key, n)` asked for more distinct owners than there are nodes. */
export class NotEnoughNodesError extends PartitioningError {
  /** How many owners were asked for. */
  readonly requested: number;
  /** How many nodes there are. */
  readonly available: number;
  constructor(requested: number, available: number) {
    super('ERR_BALLAST_NOT_ENOUGH_NODES', `asked for ${requested} distinct owners, but there are only ${available} nodes`);
    this.requested = requested;
    this.available = available;
  }
}

/**
 * Jump consistent hash can only drop its last bucket without remapping others;
 * thrown by `JumpPartitioner.remove()` for any other node unless `removal: 'swap'`.
 */
export class JumpRemoveNotLastError extends PartitioningError {
  /** The node that was asked to be removed. */
  readonly node: string;
  /** The node in the last bucket, the only one that can be removed cheaply. */
  readonly last: string;
  constructor(node: string, last: string) {
    super(
      'ERR_BALLAST_JUMP_REMOVE_NOT_LAST',
      `jump hash can only remove its last bucket (${JSON.stringify(last)}), not ${JSON.stringify(node)}; ` +
        `create the partitioner with removal: 'swap' to move the last node into the freed bucket`,
    );
    this.node = node;
    this.last = last;
  }
}

/**
 * True for any error listed in {@link PartitioningErrorCode}, from any copy of the package
 * (the test is the `code`, not `instanceof`). Pass `code` to test for one kind.
 */
export function isPartitioningError(value: unknown, code?: PartitioningErrorCode): value is PartitioningError {
  return isBallastError(value) && CODES.has(value.code) && (code === undefined || value.code === code);
}

/** The empty-lookup error, built without a stack trace: it can be thrown on a hot path. */
export function emptyPartitioner(): EmptyPartitionerError {
  return withoutStack(() => new EmptyPartitionerError());
}
