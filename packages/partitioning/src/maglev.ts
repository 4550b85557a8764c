import { type Clock, InvalidOptionError, integer, oneOf, systemClock } from '@ballast/common';
import { compareIds } from './continuum.ts';
import { defaultTableSize, isPrime, MaglevTableFill } from './maglev-table.ts';
import {
  BasePartitioner,
  checkState,
  type PartitionerEvents,
  type PartitionerOptions,
  type PartitionerState,
  type PartitionerStats,
} from './partitioner.ts';

export { defaultTableSize } from './maglev-table.ts';

/** How {@link MaglevPartitioner} rebuilds its table after nodes change. */
export type MaglevRebuild = 'sync' | 'background';

/** Options of {@link MaglevPartitioner}. */
export interface MaglevOptions extends PartitionerOptions {
  /**
   * Lookup table size: a prime at least the node count; 100 × nodes or more keeps every
   * node within about 1% of its share. Changing it remaps most keys, so a fixed size
   * suits a node count that changes a lot.
   * @default the first prime above the smallest power of two ≥ 100 × nodes, and at least 131,101 — so the size (and with it most of the mapping) only changes when the count crosses 1,310, 2,621, 5,242... nodes
   */
  tableSize?: number;
  /**
   * When the table is rebuilt after `add()` / `remove()`:
   * - `'sync'`: on the first lookup after a batch of changes, in that lookup's call. Every
   *   lookup reflects the current nodes exactly; that one lookup pays the whole rebuild
   *   (about 5 ms at the default table size, 50 ms at a million entries; see the benchmark).
   * - `'background'`: in chunks of `rebuildChunk` work units, one per event-loop turn
   *   (`setImmediate`, unref'd while nobody awaits {@link MaglevPartitioner.whenRebuilt}).
   *   Until the new table is swapped in, lookups use the previous one: added nodes get no
   *   key yet, and the keys of removed nodes go to the next entry of the table whose node
   *   is still present. Changes in one turn cost one rebuild; changes while a rebuild runs
   *   are applied to its table when it is swapped in, and another rebuild follows. Keeps
   *   the previous table for reuse: twice the table memory (4 bytes per entry each).
   * @default 'sync' — the {@link Partitioner} contract (a lookup right after `add()` sees the new node) holds without waiting
   */
  rebuild?: MaglevRebuild;
  /**
   * Work per event-loop turn of a background rebuild, in units of about one table probe
   * (a filled entry counts 4); bounds how long one chunk blocks the event loop.
   * @default 32768 — about 0.2–0.3 ms per chunk on a server core; a default-size table takes about 40–55 chunks
   */
  rebuildChunk?: number;
  /** Time source for the rebuild durations reported by `rebuilt` and `stats()`. @default systemClock */
  clock?: Clock;
}

/** Payload of the `rebuilt` event, also kept as `stats().lastRebuild`. */
export interface MaglevRebuiltEvent {
  /** `'sync'`: built inside a lookup (or `whenRebuilt()`); `'background'`: built in chunks. */
  mode: MaglevRebuild;
  /** Nodes in the new table. */
  nodes: number;
  /** Entries in the new table. */
  tableSize: number;
  /** From the first chunk to the swap, in ms (event-loop turns in between included). */
  durationMs: number;
  /** Time spent filling the table, in ms. */
  busyMs: number;
  /** Event-loop turns the fill took (1 for a synchronous rebuild). */
  chunks: number;
  /** The longest chunk, in ms: how long the rebuild blocked the event loop at most. */
  maxChunkMs: number;
}

/** Events of {@link MaglevPartitioner}, in addition to `add` and `remove`. */
export interface MaglevEvents {
  /** A table for the current nodes was swapped in. */
  rebuilt: MaglevRebuiltEvent;
}

/** The snapshot returned by {@link MaglevPartitioner.stats}. */
export interface MaglevStats extends PartitionerStats {
  /** The strategy. */
  strategy: 'maglev';
  /** The table size for the current node count. */
  tableSize: number;
  /** The rebuild mode. */
  rebuild: MaglevRebuild;
  /** True while lookups use a table built for an earlier set of nodes (a rebuild is due). */
  stale: boolean;
  /** True while a background rebuild is scheduled or under way. */
  rebuilding: boolean;
  /** Tables built so far. */
  rebuilds: number;
  /** Lookups whose table entry belonged to a removed node and went to the next present one. */
  fallbacks: number;
  /** The latest rebuild, if any. */
  lastRebuild: MaglevRebuiltEvent | undefined;
}

const DEFAULT_CHUNK = 32_768;
const TWO_32 = 4294967296;
const NO_IDS: readonly string[] = [];

/**
 * Maglev hashing (Eisenbud et al., NSDI 2016): each node fills the slots of a prime-sized
 * lookup table in the order of its own permutation, taking turns (weighted nodes take
 * proportionally more turns), so a lookup is one hash and one array read — O(1). Nodes
 * take turns in id order, so the table depends only on the set of nodes and weights.
 * Changes are batched: the table is rebuilt once per batch, either inside the first lookup
 * after it (`rebuild: 'sync'`) or in the background in bounded chunks
 * (`rebuild: 'background'`); both build the same table. Movement on a change is close to,
 * but above, the ideal.
 *
 * @example
 * ```ts
 * const maglev = new MaglevPartitioner({ nodes: ['10.0.0.1:8080', '10.0.0.2:8080'], rebuild: 'background' });
 * maglev.owner('flow:5f3a'); // one hash, one table read
 * maglev.remove('10.0.0.2:8080'); // its keys go to the next present entry at once
 * await maglev.whenRebuilt(); // the new table is in place
 * maglev.close(); // cancels a pending rebuild
 * ```
 */
export class MaglevPartitioner extends BasePartitioner<PartitionerEvents & MaglevEvents> {
  /** @inheritDoc */
  readonly strategy: 'maglev' = 'maglev';
  /** The rebuild mode. */
  readonly rebuild: MaglevRebuild;
  readonly #fixedSize: number | undefined;
  readonly #chunk: number;
  readonly #clock: Clock;

  // The table lookups read, and what it was built for.
  #table: Int32Array = new Int32Array(0);
  /** Node of each table index; null once that node is removed (until it comes back or a rebuild). */
  #tableIds: (string | null)[] = [];
  #tableIndex: Map<string, number> = new Map();
  #tableWeights: Float64Array = new Float64Array(0);
  #scale = 0;
  /** Table nodes still present. */
  #live = 0;
  /** Nodes whose presence or weight differs from the table's: the table is stale when > 0. */
  #diff = 0;
  /** The one flag lookups test: build now, before reading the table. */
  #needBuild = true;

  // Background rebuild.
  #fill: MaglevTableFill | undefined;
  /** The table before the last background swap, refilled by the next one: no allocation, no GC pause. */
  #spare: Int32Array | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #waiters: ((current: boolean) => void)[] = [];
  #closed = false;
  #fillStart = 0;
  #busyMs = 0;
  #chunks = 0;
  #maxChunkMs = 0;

  #rebuilds = 0;
  #fallbacks = 0;
  #last: MaglevRebuiltEvent | undefined;

  /** @throws {InvalidOptionError} When an option is invalid (e.g. `tableSize` not prime). */
  constructor(options: MaglevOptions = {}) {
    super(options);
    if (options.tableSize !== undefined) {
      const size = integer('tableSize', options.tableSize, { min: 2, max: 2 ** 30 });
      if (!isPrime(size)) throw new InvalidOptionError('tableSize', 'a prime number', size);
      this.#fixedSize = size;
    }
    this.rebuild = oneOf('rebuild', options.rebuild ?? 'sync', ['sync', 'background'] as const);
    this.#chunk = integer('rebuildChunk', options.rebuildChunk ?? DEFAULT_CHUNK, { min: 1 });
    this.#clock = options.clock ?? systemClock;
    if (typeof this.#clock?.now !== 'function') throw new InvalidOptionError('clock', 'a Clock (an object with now())', options.clock);
    this.addAll(options.nodes);
  }

  /**
   * Restores a partitioner from {@link MaglevPartitioner.toJSON}. The rebuild mode is not
   * part of the mapping, so it is not saved: pass it again here.
   */
  static fromJSON(state: PartitionerState, options: Omit<MaglevOptions, 'nodes' | 'tableSize'> = {}): MaglevPartitioner {
    const s = checkState(state, 'maglev');
    return new MaglevPartitioner({ ...options, tableSize: s.options.tableSize as number | undefined, nodes: s.nodes });
  }

  /** The table size for the current node count. */
  get tableSize(): number {
    return this.#fixedSize ?? defaultTableSize(this.size);
  }

  /**
   * {@inheritDoc Partitioner.owner}
   * During a background rebuild, the owner in the previous table, or when that node has
   * left, the node of the next table entry still present.
   */
  owner(key: string | Uint8Array): string {
    if (this.#needBuild) this.#buildForLookup();
    const slot = Math.floor((this.hash(key) >>> 0) * this.#scale);
    return this.#tableIds[this.#table[slot]!] ?? this.#fallback(key, slot);
  }

  /**
   * {@inheritDoc Partitioner.preferenceList}
   * The owner, then the distinct owners of the following table entries (skipping removed
   * nodes during a background rebuild), then any other node in id order.
   */
  preferenceList(key: string | Uint8Array, n: number): string[] {
    this.checkCount(n);
    if (n === 0) return [];
    if (this.#needBuild) this.#buildForLookup();
    const table = this.#table;
    const ids = this.#tableIds;
    const m = table.length;
    const start = Math.floor((this.hash(key) >>> 0) * this.#scale);
    const fromTable = Math.min(n, this.#live);
    const taken = new Set<number>();
    const result: string[] = [];
    for (let k = 0; k < m && result.length < fromTable; k++) {
      const i = table[start + k < m ? start + k : start + k - m]!;
      if (taken.has(i)) continue;
      taken.add(i);
      const id = ids[i];
      if (id != null) result.push(id);
    }
    if (result.length < n) {
      // Nodes with no entry: added since the table was built, or of tiny weight.
      const listed = new Set(result);
      for (const id of [...this.weights.keys()].sort(compareIds)) {
        if (result.length === n) break;
        if (!listed.has(id)) result.push(id);
      }
    }
    return result;
  }

  /**
   * Resolves once lookups use a table built for the current nodes: `true` then, `false`
   * when {@link close} cancelled the background rebuild first. In `'sync'` mode (and after
   * `close()`) a stale table is rebuilt right away. While a caller waits, the pending
   * rebuild keeps the process alive.
   *
   * @example
   * ```ts
   * maglev.add('10.0.0.3:8080');
   * await maglev.whenRebuilt(); // '10.0.0.3:8080' now owns its share of keys
   * ```
   */
  whenRebuilt(): Promise<boolean> {
    if (this.#diff === 0) return Promise.resolve(true);
    if (!this.#background()) {
      this.#buildNow();
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#immediate?.ref();
    });
  }

  /** A snapshot: nodes, table size and the state of rebuilds. */
  override stats(): MaglevStats {
    return {
      strategy: 'maglev',
      nodes: this.size,
      tableSize: this.tableSize,
      rebuild: this.rebuild,
      stale: this.#diff > 0,
      rebuilding: this.#immediate !== undefined || this.#fill !== undefined,
      rebuilds: this.#rebuilds,
      fallbacks: this.#fallbacks,
      lastRebuild: this.#last,
    };
  }

  /**
   * Removes every listener and cancels a pending background rebuild (its `whenRebuilt()`
   * promises resolve `false`), leaving no timer. The partitioner stays usable: from now on
   * it rebuilds on the first lookup after a change, as in `'sync'` mode.
   */
  override close(): void {
    super.close();
    if (this.#closed) return;
    this.#closed = true;
    this.#cancel();
    this.#settle();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve(false);
  }

  protected stateOptions(): Record<string, unknown> {
    return this.#fixedSize === undefined ? {} : { tableSize: this.#fixedSize };
  }

  protected onAdd(node: string, weight: number): void {
    if (this.#fixedSize !== undefined && this.size + 1 > this.#fixedSize) {
      throw new InvalidOptionError('tableSize', `at least the node count (${this.size + 1})`, this.#fixedSize);
    }
    this.#changed(node, undefined, weight);
  }

  protected onRemove(node: string): void {
    this.#changed(node, this.weights.get(node), undefined);
  }

  #background(): boolean {
    return this.rebuild === 'background' && !this.#closed;
  }

  /** Records that `node` went from weight `before` to `after` (undefined: absent). */
  #changed(node: string, before: number | undefined, after: number | undefined): void {
    const index = this.#tableIndex.get(node);
    const built = index === undefined ? undefined : this.#tableWeights[index];
    this.#diff += (after !== built ? 1 : 0) - (before !== built ? 1 : 0);
    if (index !== undefined) {
      // A present node keeps its old entries until the rebuild; a removed one gives them up now.
      const present = after !== undefined;
      if (present !== (this.#tableIds[index] !== null)) {
        this.#tableIds[index] = present ? node : null;
        this.#live += present ? 1 : -1;
      }
    }
    this.#settle();
    if (this.#diff === 0) {
      // Back to the nodes the table was built for: nothing to rebuild (a fill under way is for other nodes).
      this.#cancel();
      this.#resolve(true);
    } else if (this.#background()) {
      this.#schedule();
    }
  }

  #settle(): void {
    this.#needBuild = this.#live === 0 || (this.#diff > 0 && !this.#background());
  }

  #schedule(): void {
    if (this.#immediate !== undefined) return;
    this.#immediate = setImmediate(this.#step);
    if (this.#waiters.length === 0) this.#immediate.unref();
  }

  #cancel(): void {
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    this.#fill = undefined;
  }

  #resolve(current: boolean): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve(current);
  }

  /** One chunk of a background rebuild. */
  #step = (): void => {
    this.#immediate = undefined;
    if (this.#diff === 0 || !this.#background()) return;
    const started = this.#clock.now();
    let fill = this.#fill;
    if (fill === undefined) {
      if (this.size === 0) {
        this.#install(undefined, undefined);
        return;
      }
      fill = this.#fill = this.#newFill(this.#spare);
      this.#spare = undefined;
      this.#fillStart = started;
      this.#busyMs = 0;
      this.#chunks = 0;
      this.#maxChunkMs = 0;
    }
    fill.fill(this.#chunk);
    const ended = this.#clock.now();
    this.#busyMs += ended - started;
    this.#chunks++;
    this.#maxChunkMs = Math.max(this.#maxChunkMs, ended - started);
    if (!fill.done) {
      this.#schedule();
      return;
    }
    this.#fill = undefined;
    this.#install(fill, {
      mode: 'background',
      nodes: fill.ids.length,
      tableSize: fill.table.length,
      durationMs: ended - this.#fillStart,
      busyMs: this.#busyMs,
      chunks: this.#chunks,
      maxChunkMs: this.#maxChunkMs,
    });
  };

  /** Builds the table for the current nodes in one go. */
  #buildNow(): void {
    this.#cancel();
    if (this.size === 0) {
      this.#install(undefined, undefined);
      return;
    }
    const started = this.#clock.now();
    // Nothing reads the current table until this returns, so it can be refilled in place.
    const fill = this.#newFill(this.#table);
    fill.fill(Number.POSITIVE_INFINITY);
    const ms = this.#clock.now() - started;
    this.#install(fill, {
      mode: 'sync',
      nodes: fill.ids.length,
      tableSize: fill.table.length,
      durationMs: ms,
      busyMs: ms,
      chunks: 1,
      maxChunkMs: ms,
    });
  }

  #buildForLookup(): void {
    this.#buildNow();
    if (this.#live === 0) this.empty();
  }

  #newFill(buffer: Int32Array | undefined): MaglevTableFill {
    const ids = [...this.weights.keys()].sort(compareIds);
    return new MaglevTableFill(ids, (id) => this.weights.get(id)!, this.hash, this.tableSize, buffer);
  }

  /**
   * Swaps in a complete table (or none, with no node). A background fill may have been
   * started before the latest changes: they are applied to it as to any table, and another
   * rebuild follows, so every rebuild that starts also finishes.
   */
  #install(fill: MaglevTableFill | undefined, event: MaglevRebuiltEvent | undefined): void {
    const ids = fill?.ids ?? NO_IDS;
    const weights = fill?.weights ?? new Float64Array(0);
    if (event?.mode === 'background') this.#spare = this.#table;
    this.#table = fill?.table ?? new Int32Array(0);
    this.#tableIds = ids.map((id) => (this.weights.has(id) ? id : null));
    this.#tableIndex = new Map(ids.map((id, i) => [id, i]));
    this.#tableWeights = weights;
    this.#scale = this.#table.length / TWO_32;
    this.#live = 0;
    let diff = 0;
    for (let i = 0; i < ids.length; i++) {
      if (this.#tableIds[i] !== null) this.#live++;
      if (this.weights.get(ids[i]!) !== weights[i]) diff++;
    }
    for (const id of this.weights.keys()) if (!this.#tableIndex.has(id)) diff++;
    this.#diff = diff;
    this.#settle();
    if (event !== undefined) {
      this.#rebuilds++;
      this.#last = event;
      if (this.events.has('rebuilt')) this.events.emit('rebuilt', event);
    }
    if (diff === 0) this.#resolve(true);
    else if (this.#background()) this.#schedule();
  }

  /** The owner of `slot` when its node has left: the node of the next entry still present. */
  #fallback(key: string | Uint8Array, slot: number): string {
    this.#fallbacks++;
    const table = this.#table;
    const ids = this.#tableIds;
    const m = table.length;
    for (let k = 1; k < m; k++) {
      const id = ids[table[slot + k < m ? slot + k : slot + k - m]!];
      if (id != null) return id;
    }
    // Every present node of the table owns no entry (tiny weights): build for the current nodes.
    this.#buildForLookup();
    return this.owner(key);
  }
}
