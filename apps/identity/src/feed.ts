/**
 * The versioned change feed between the management plane and the data plane. The
 * management plane writes through a {@link ChangeSink}; each API server's edge cache
 * reads through a {@link ChangeSource}. Two implementations of both: in-process (the
 * embedded system, one process) and Redis (pub/sub plus a snapshot to catch up from).
 */
import type { Unsubscribe } from '@ballast/common';
import type { Change, KeyEntry, TenantEntry } from './model.ts';

/** A batch of changes as published: `prev` is the feed's version before the batch, `version` after it. */
export interface ChangeBatch {
  readonly prev: number;
  readonly version: number;
  readonly changes: readonly Change[];
}

/** Every key entry (revoked ones included) and tenant, at `version`. */
export interface Snapshot {
  readonly version: number;
  readonly keys: readonly KeyEntry[];
  readonly tenants: readonly TenantEntry[];
}

/** One key's entry and its tenant, as of the feed's `version` when read. */
export interface Lookup {
  readonly version: number;
  readonly key?: KeyEntry;
  readonly tenant?: TenantEntry;
}

/** Changes after a version, or `resync` when the feed's log no longer reaches back that far. */
export type ChangesSince = { readonly version: number; readonly changes: readonly Change[] } | 'resync';

/** The management plane's side of the feed. */
export interface ChangeSink {
  /** The highest version the feed holds; 0 when empty. */
  publishedVersion(): Promise<number>;
  /**
   * Applies `changes` (ascending versions) to the snapshot, appends them to the log and
   * notifies subscribers, atomically. Idempotent: an entry is only replaced by a newer
   * version, and versions already published are not published again.
   */
  publish(changes: readonly Change[]): Promise<void>;
}

/** The data plane's side of the feed. */
export interface ChangeSource {
  readonly kind: 'in-process' | 'redis';
  /** Everything, to fill an edge cache from. */
  snapshot(): Promise<Snapshot>;
  /** One key, for a cache miss. */
  lookup(hash: string): Promise<Lookup>;
  /** Changes after `version` (catching up after a lost publish). */
  changesSince(version: number): Promise<ChangesSince>;
  /** Calls `listener` with every batch published from now on; returns the unsubscribe function. */
  subscribe(listener: (batch: ChangeBatch) => void): Unsubscribe;
  /** Releases connections and subscribers. */
  close(): Promise<void>;
}

/** Options of {@link InProcessFeed}. */
export interface InProcessFeedOptions {
  /** Changes kept in the log for {@link ChangeSource.changesSince}; older ones mean a resync. @default 10000 */
  maxLog?: number;
}

/**
 * Both sides of the feed in one process, for the embedded system: publishing updates
 * the snapshot and calls every subscriber before it resolves.
 */
export class InProcessFeed implements ChangeSink, ChangeSource, AsyncDisposable {
  readonly kind = 'in-process' as const;
  readonly #keys = new Map<string, KeyEntry>();
  readonly #tenants = new Map<string, TenantEntry>();
  readonly #log: Change[] = [];
  readonly #listeners = new Set<(batch: ChangeBatch) => void>();
  readonly #maxLog: number;
  #version = 0;
  #floor = 0;

  constructor(options: InProcessFeedOptions = {}) {
    this.#maxLog = options.maxLog ?? 10_000;
  }

  async publishedVersion(): Promise<number> {
    return this.#version;
  }

  async publish(changes: readonly Change[]): Promise<void> {
    const prev = this.#version;
    const fresh: Change[] = [];
    for (const change of changes) {
      if (change.kind === 'key') putNewer(this.#keys, change.hash, change);
      else putNewer(this.#tenants, change.id, change);
      if (change.version > this.#version) {
        this.#version = change.version;
        this.#log.push(change);
        fresh.push(change);
      }
    }
    if (this.#log.length > this.#maxLog) this.#floor = (this.#log.splice(0, this.#log.length - this.#maxLog).at(-1) as Change).version;
    if (fresh.length === 0) return;
    const batch: ChangeBatch = { prev, version: this.#version, changes: fresh };
    for (const listener of this.#listeners) listener(batch);
  }

  async snapshot(): Promise<Snapshot> {
    return { version: this.#version, keys: [...this.#keys.values()], tenants: [...this.#tenants.values()] };
  }

  async lookup(hash: string): Promise<Lookup> {
    const key = this.#keys.get(hash);
    const tenant = key ? this.#tenants.get(key.tenantId) : undefined;
    return { version: this.#version, ...(key && { key }), ...(tenant && { tenant }) };
  }

  async changesSince(version: number): Promise<ChangesSince> {
    if (version < this.#floor) return 'resync';
    return { version: this.#version, changes: this.#log.filter((c) => c.version > version) };
  }

  subscribe(listener: (batch: ChangeBatch) => void): Unsubscribe {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function putNewer<T extends { version: number }>(map: Map<string, T>, id: string, entry: T): void {
  const current = map.get(id);
  if (current === undefined || current.version < entry.version) map.set(id, entry);
}
