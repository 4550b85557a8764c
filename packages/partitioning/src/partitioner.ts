import { Emitter, InvalidOptionError, integer, nonEmptyString, type Unsubscribe } from '@ballast/common';
import { DuplicateNodeError, emptyPartitioner, NotEnoughNodesError, UnknownNodeError } from './errors.ts';
import { type HashFunction, murmur3 } from './hash.ts';

/** The strategies behind {@link Partitioner}. */
export type PartitionStrategy = 'ring' | 'jump' | 'rendezvous' | 'maglev' | 'bounded-load' | 'consistent-hash';

/** A node and its weight, as listed by {@link Partitioner.nodes}. */
export interface NodeEntry {
  /** The node's id. */
  id: string;
  /** Its relative capacity: a node of weight 2 owns twice the keys of a node of weight 1. */
  weight: number;
}

/** A node given to a constructor: an id (weight 1) or an id with a weight. */
export type NodeInput = string | NodeEntry;

/**
 * What `toJSON()` returns: plain JSON that `restorePartitioner()` (or the class's static
 * `fromJSON`) turns back into a partitioner with the same mapping. The hash function is not
 * serialised: pass the same one when restoring if you did not use the default.
 */
export interface PartitionerState {
  /** Format version. */
  version: 1;
  /** The strategy that produced the state. */
  strategy: PartitionStrategy;
  /** The nodes, in the order the partitioner lists them. */
  nodes: NodeEntry[];
  /** Strategy options needed to rebuild the same mapping. */
  options: Record<string, unknown>;
  /** Per-node extra state (bounded-load loads, consistent-hash control points). */
  extra?: Record<string, unknown>;
}

/** What every `stats()` snapshot holds; strategies add their own fields. */
export interface PartitionerStats {
  /** The strategy. */
  strategy: PartitionStrategy;
  /** The number of nodes. */
  nodes: number;
}

/** Events every partitioner emits. */
export interface PartitionerEvents {
  /** A node joined. */
  add: { node: string; weight: number };
  /** A node left. */
  remove: { node: string };
}

/**
 * Decides which node owns a key. Every strategy of this package implements it, and it is
 * small enough to implement yourself.
 */
export interface Partitioner {
  /**
   * Adds a node.
   * @param weight Relative capacity, finite and > 0. @default 1
   * @throws {DuplicateNodeError} When the node is already present.
   * @throws {InvalidOptionError} When the id is not a non-empty string or the weight is invalid.
   */
  add(node: string, weight?: number): void;
  /**
   * Removes a node; only the keys it owned move.
   * @throws {UnknownNodeError} When the node is not present.
   */
  remove(node: string): void;
  /** True when the node is present. */
  has(node: string): boolean;
  /**
   * The node that owns `key`.
   * @throws {EmptyPartitionerError} When there is no node.
   */
  owner(key: string | Uint8Array): string;
  /**
   * The first `n` distinct owners of `key`, the owner first (Dynamo-style replica placement).
   * @throws {NotEnoughNodesError} When `n` is larger than the number of nodes.
   */
  preferenceList(key: string | Uint8Array, n: number): string[];
  /** The nodes and their weights. */
  nodes(): NodeEntry[];
  /** The number of nodes. */
  readonly size: number;
  /** A JSON snapshot from which the same mapping can be restored. */
  toJSON(): PartitionerState;
}

/** Options shared by every strategy. */
export interface PartitionerOptions {
  /** Hash of keys and node ids. Must return an unsigned 32-bit integer. @default murmur3 */
  hash?: HashFunction;
  /** Initial nodes (ids, or ids with weights), added in order. @default [] */
  nodes?: readonly NodeInput[];
}

/**
 * What every strategy has in common: node bookkeeping, validation, events, JSON.
 * Subclasses implement the lookups and the `onAdd`/`onRemove` hooks.
 */
export abstract class BasePartitioner<E extends PartitionerEvents = PartitionerEvents> implements Partitioner {
  /** The strategy name, as written in `toJSON()`. */
  abstract readonly strategy: PartitionStrategy;
  /** The hash function in use. */
  readonly hash: HashFunction;
  /** Weight of each node, in insertion order. */
  protected readonly weights: Map<string, number> = new Map();
  /** Typed events; subclasses with more events widen `E`. */
  protected readonly events: Emitter<E> = new Emitter();

  constructor(options: PartitionerOptions = {}) {
    const hash = options.hash ?? murmur3;
    if (typeof hash !== 'function') throw new InvalidOptionError('hash', 'a function', hash);
    // A hash returning a string, a bigint or a fraction would put every key on one point,
    // silently: try it once. (Signed 32-bit results work: every use takes `>>> 0`.)
    const probe: unknown = hash('ballast', 0);
    if (typeof probe !== 'number' || !Number.isInteger(probe) || probe < -(2 ** 31) || probe >= 2 ** 32) {
      throw new InvalidOptionError(
        'hash',
        "a function returning an unsigned 32-bit integer (hash('ballast', 0) returned what follows)",
        probe,
      );
    }
    this.hash = hash;
  }

  /** Adds the constructor's initial nodes; called by subclasses once their fields exist. */
  protected addAll(nodes: readonly NodeInput[] | undefined): void {
    if (nodes === undefined) return;
    if (!Array.isArray(nodes)) throw new InvalidOptionError('nodes', 'an array of node ids or { id, weight }', nodes);
    for (const node of nodes) {
      if (typeof node === 'string') this.add(node);
      else if (node !== null && typeof node === 'object') this.add(node.id, node.weight);
      else throw new InvalidOptionError('nodes', 'an array of node ids or { id, weight }', node);
    }
  }

  /** {@inheritDoc Partitioner.size} */
  get size(): number {
    return this.weights.size;
  }

  /** {@inheritDoc Partitioner.add} */
  add(node: string, weight = 1): void {
    nonEmptyString('node', node);
    checkWeight(weight);
    if (this.weights.has(node)) throw new DuplicateNodeError(node);
    this.onAdd(node, weight);
    this.weights.set(node, weight);
    if (this.events.has('add')) this.events.emit('add', { node, weight } as E['add']);
  }

  /** {@inheritDoc Partitioner.remove} */
  remove(node: string): void {
    if (!this.weights.has(node)) throw new UnknownNodeError(node);
    this.onRemove(node);
    this.weights.delete(node);
    if (this.events.has('remove')) this.events.emit('remove', { node } as E['remove']);
  }

  /** {@inheritDoc Partitioner.has} */
  has(node: string): boolean {
    return this.weights.has(node);
  }

  /** {@inheritDoc Partitioner.nodes} */
  nodes(): NodeEntry[] {
    return Array.from(this.weights, ([id, weight]) => ({ id, weight }));
  }

  /** {@inheritDoc Partitioner.owner} */
  abstract owner(key: string | Uint8Array): string;

  /** {@inheritDoc Partitioner.preferenceList} */
  abstract preferenceList(key: string | Uint8Array, n: number): string[];

  /** {@inheritDoc Partitioner.toJSON} */
  toJSON(): PartitionerState {
    return { version: 1, strategy: this.strategy, nodes: this.nodes(), options: this.stateOptions() };
  }

  /**
   * Subscribes to an event; returns a function that unsubscribes.
   * @example
   * ```ts
   * const off = partitioner.on('remove', ({ node }) => console.log(`${node} left`));
   * ```
   */
  on<K extends keyof E>(event: K, listener: (payload: E[K]) => void): Unsubscribe {
    return this.events.on(event, listener);
  }

  /** A snapshot for metrics and logs. */
  stats(): PartitionerStats {
    return { strategy: this.strategy, nodes: this.size };
  }

  /** Removes every event listener. The partitioner holds no timer or socket, so it stays usable. */
  close(): void {
    this.events.clear();
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The number of event listeners, for leak checks. */
  listenerCount(): number {
    return this.events.listenerCount();
  }

  /** Options written to `toJSON()`. */
  protected abstract stateOptions(): Record<string, unknown>;
  /** Called before `node` is recorded; may throw to refuse it. */
  protected abstract onAdd(node: string, weight: number): void;
  /** Called before `node` is forgotten; may throw to refuse it. */
  protected abstract onRemove(node: string): void;

  /** Validates `n` for `preferenceList`. */
  protected checkCount(n: number): void {
    integer('n', n, { min: 0 });
    if (n > this.weights.size) throw new NotEnoughNodesError(n, this.weights.size);
  }

  /** Throws when there is no node; used by lookups. */
  protected empty(): never {
    throw emptyPartitioner();
  }
}

/** Throws unless `weight` is a finite number > 0. */
export function checkWeight(weight: unknown, option = 'weight'): number {
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
    throw new InvalidOptionError(option, 'a finite number > 0', weight);
  }
  return weight;
}

/** Throws unless `state` looks like a {@link PartitionerState} of `strategy`. */
export function checkState(state: unknown, strategy: PartitionStrategy): PartitionerState {
  const s = state as PartitionerState | null;
  if (
    s === null ||
    typeof s !== 'object' ||
    s.version !== 1 ||
    !Array.isArray(s.nodes) ||
    s.options === null ||
    typeof s.options !== 'object' ||
    (s.extra !== undefined && (s.extra === null || typeof s.extra !== 'object'))
  ) {
    throw new InvalidOptionError('state', 'a PartitionerState from toJSON() (version 1)', state);
  }
  if (s.strategy !== strategy) throw new InvalidOptionError('state.strategy', JSON.stringify(strategy), s.strategy);
  return s;
}
