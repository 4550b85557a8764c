import { abortReason } from '@ballast/common';
import type { Redis } from 'ioredis';
import type { Finish, Prefetch, RedisQueue } from './redis.ts';
import { type Consumer, type Job, type Lease, QueueClosedError } from './types.ts';

/** @internal One entry of the stream as a consumer receives it. */
export interface RawEntry {
  entryId: string;
  /** Index of the shard it came from. */
  shard: number;
  /** Member id of the producer waiting for it ('' when nobody waits: not attended). */
  producer: string;
  job: Job;
}

interface Taker {
  consumer: RedisConsumer;
  resolve: (entry: RawEntry) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * @internal The new entries of one queue handle, shared by all its consumers: one
 * `XREADGROUP … COUNT n` for the n consumers waiting (on one blocking connection), and
 * one reclaim scan every `blockMs` (at once when a member is found gone), so a process
 * running many consumers makes one round trip for many jobs. Entries are read under the
 * handle's own name in the consumer group (`q@<member>`), so a member found gone is found
 * by its name. With several shards each has its own blocking read (its own connection)
 * for its share of the waiting consumers, so an entry is read as soon as it arrives on
 * any shard, busy shards serve in proportion, and a shard failing over holds up only its
 * own read.
 *
 * With one shard, a FINISH call also claims the next entries of the consumers it
 * finishes for (prefetch, see the FINISH script): they wait here, ready, and the
 * consumers asking next take them without a read. Entries nobody takes within
 * {@link EntryFeed.holdMs} (a consumer that closed or stopped asking) are handed back,
 * well within their lease, which is not renewed while they wait.
 */
export class EntryFeed implements Prefetch {
  /** The handle's consumer name in the group. */
  readonly name: string;
  readonly #queue: RedisQueue;
  readonly #takers: Taker[] = [];
  /** Entries received with nobody waiting (prefetched), oldest first, with when they came. */
  readonly #ready: Array<{ entry: RawEntry; at: number }> = [];
  #expiry: ReturnType<typeof setTimeout> | undefined;
  /** The blocking connection of each shard's read. */
  readonly #clients = new Map<number, Redis>();
  /** Shards whose read loop is running. */
  readonly #pumping = new Set<number>();
  #closed = false;
  #lastReclaim = Number.NEGATIVE_INFINITY;
  #lastHint = 0;

  constructor(queue: RedisQueue, name: string) {
    this.#queue = queue;
    this.name = name;
  }

  get consumer(): string {
    return this.name;
  }

  /** How long a ready entry waits for a consumer before it is handed back (ms). */
  get holdMs(): number {
    return Math.max(20, Math.min(1000, this.#queue.leaseMs / 4));
  }

  /**
   * Entries a FINISH call should claim for `finishing` consumers: as many as will ask,
   * less those already ready; none with several shards (each is read in turn, for
   * fairness) or when a reclaim scan is due (it runs on the next read, which
   * prefetching would otherwise keep from happening).
   */
  count(finishing: number): number {
    if (this.#closed || this.#queue.shardCount !== 1 || this.#reclaimDue()) return 0;
    return Math.max(0, finishing - this.#ready.length);
  }

  deliver(entries: RawEntry[]): void {
    for (const entry of entries) this.#hand(entry);
  }

  /** The next entry for `consumer`; rejects when `signal` aborts or the consumer closes. */
  take(consumer: RedisConsumer, signal: AbortSignal | undefined): Promise<RawEntry> {
    return new Promise<RawEntry>((resolve, reject) => {
      if (this.#closed) {
        reject(new QueueClosedError());
        return;
      }
      const ready = this.#ready.shift();
      if (ready) {
        resolve(ready.entry);
        return;
      }
      const taker: Taker = { consumer, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        taker.onAbort = () => {
          this.#remove(taker);
          reject(abortReason(signal));
        };
        signal.addEventListener('abort', taker.onAbort, { once: true });
      }
      this.#takers.push(taker);
      this.#start();
    });
  }

  /** Rejects every take of `consumer` (it closed). */
  drop(consumer: RedisConsumer): void {
    for (const taker of [...this.#takers]) {
      if (taker.consumer !== consumer) continue;
      this.#remove(taker);
      taker.reject(new QueueClosedError());
    }
  }

  /** Rejects every waiting take and hands the ready entries back (resolves once Redis has them back, or could not be told). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const taker of this.#takers.splice(0)) {
      if (taker.onAbort) taker.signal?.removeEventListener('abort', taker.onAbort);
      taker.reject(new QueueClosedError());
    }
    const back = this.giveBackReady();
    for (const client of this.#clients.values()) client.disconnect();
    await back;
  }

  /** Hands back every ready entry (no consumer is left to take them). */
  async giveBackReady(): Promise<void> {
    clearTimeout(this.#expiry);
    this.#expiry = undefined;
    await Promise.all(this.#ready.splice(0).map(({ entry }) => this.#giveBack(entry)));
  }

  #remove(taker: Taker): void {
    const i = this.#takers.indexOf(taker);
    if (i >= 0) this.#takers.splice(i, 1);
    if (taker.onAbort) taker.signal?.removeEventListener('abort', taker.onAbort);
  }

  /**
   * Starts reading after the current turn of the event loop, so that every consumer
   * asking in this turn (a batch of completions resolving together) is counted in one
   * read.
   */
  #start(): void {
    for (let shard = 0; shard < this.#queue.shardCount; shard++) {
      if (this.#pumping.has(shard)) continue;
      this.#pumping.add(shard);
      setImmediate(() => {
        this.#pump(shard).catch(() => {});
      });
    }
  }

  /** Reads shard `shard` while consumers wait, each read for its share of them. */
  async #pump(shard: number): Promise<void> {
    const shards = this.#queue.shardCount;
    try {
      while (this.#takers.length > 0 && !this.#closed) {
        for (const entry of await this.#fetch(shard, Math.ceil(this.#takers.length / shards))) this.#hand(entry);
      }
    } finally {
      this.#pumping.delete(shard);
    }
  }

  /**
   * Gives `entry` to the consumer waiting longest; with nobody waiting, keeps it ready
   * for {@link EntryFeed.holdMs}; once closed, hands it back at once.
   */
  #hand(entry: RawEntry): void {
    if (this.#closed) {
      this.#giveBack(entry);
      return;
    }
    const taker = this.#takers.shift();
    if (!taker) {
      this.#ready.push({ entry, at: performance.now() });
      this.#expiry ??= setTimeout(() => this.#expire(), this.holdMs).unref();
      return;
    }
    if (taker.onAbort) taker.signal?.removeEventListener('abort', taker.onAbort);
    taker.resolve(entry);
  }

  /** Hands back the ready entries that waited {@link EntryFeed.holdMs}; looks again when others remain. */
  #expire(): void {
    this.#expiry = undefined;
    const hold = this.holdMs;
    const now = performance.now();
    while (this.#ready.length > 0 && now - (this.#ready[0]?.at ?? now) >= hold) {
      const ready = this.#ready.shift();
      if (ready) this.#giveBack(ready.entry);
    }
    const oldest = this.#ready[0];
    if (oldest) this.#expiry = setTimeout(() => this.#expire(), Math.max(1, oldest.at + hold - now)).unref();
  }

  /** Hands an entry back: reclaimable at once, its attempt not counted. */
  #giveBack(entry: RawEntry): Promise<void> {
    return this.#queue._release(this.name, entry.shard, entry.entryId, entry.job.attempt).catch(() => {});
  }

  #reclaimDue(): boolean {
    return performance.now() - this.#lastReclaim >= this.#queue.blockMs || this.#lastHint !== this.#queue.reclaimHint;
  }

  async #fetch(shard: number, count: number): Promise<RawEntry[]> {
    const queue = this.#queue;
    if (this.#reclaimDue()) {
      // One scan (of every shard) for whichever shard's read comes first.
      this.#lastReclaim = performance.now();
      this.#lastHint = queue.reclaimHint;
      const reclaimed = await queue._reclaim(this.name, count).catch(() => []);
      if (reclaimed.length > 0) return reclaimed;
    }
    return this.#read(shard, count, queue.blockMs);
  }

  async #read(shard: number, count: number, blockMs: number): Promise<RawEntry[]> {
    let client = this.#clients.get(shard);
    if (!client) this.#clients.set(shard, (client = this.#queue._duplicate(null, () => !this.#closed)));
    try {
      return await this.#queue._read(client, this.name, shard, count, blockMs);
    } catch (error) {
      if (this.#closed) return [];
      if (String((error as Error).message).includes('NOGROUP')) {
        await this.#queue.ensureGroup(shard, true).catch(() => {});
        return [];
      }
      // Failover in progress or Redis unreachable: back off briefly and try again.
      await new Promise((r) => setTimeout(r, 100));
      return [];
    }
  }
}

/**
 * @internal A consumer of {@link RedisQueue}: takes entries from its handle's
 * {@link EntryFeed} and keeps a timer renewing the leases it holds. Its name is the
 * `worker` of the jobs it finishes.
 */
export class RedisConsumer implements Consumer {
  readonly name: string;
  readonly #queue: RedisQueue;
  readonly #feed: EntryFeed;
  /** Entries held, by shard. */
  readonly #held = new Map<number, Set<string>>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(queue: RedisQueue, name: string, feed: EntryFeed) {
    this.#queue = queue;
    this.name = name;
    this.#feed = feed;
  }

  async next(signal?: AbortSignal): Promise<Lease> {
    const queue = this.#queue;
    this.#timer ??= setInterval(() => {
      for (const [shard, ids] of this.#held) if (ids.size > 0) queue._renew(this.#feed.name, shard, [...ids]).catch(() => {});
    }, queue.leaseMs / 3);
    this.#timer.unref();
    while (true) {
      if (this.#closed) throw new QueueClosedError();
      if (signal?.aborted) throw abortReason(signal);
      const entry = await this.#feed.take(this, signal);
      const lease = await queue._begin(this, entry);
      if (lease) return lease;
    }
  }

  /** @internal */
  _lease(entry: RawEntry, tenant: string | undefined): Lease {
    const { job, shard, entryId, producer } = entry;
    let held = this.#held.get(shard);
    if (!held) this.#held.set(shard, (held = new Set()));
    const ids = held;
    ids.add(entryId);
    const started = performance.now();
    const finish = async (f: Omit<Finish, 'worker' | 'attempt' | 'serviceMs' | 'producer' | 'tenant'>): Promise<void> => {
      try {
        const serviceMs = performance.now() - started;
        const common = { worker: this.name, attempt: job.attempt, serviceMs, producer, tenant };
        await this.#queue._finish(shard, entryId, job.id, { ...f, ...common });
      } finally {
        ids.delete(entryId);
      }
    };
    return {
      job,
      complete: (data, meta) => {
        const info = JSON.stringify(meta);
        return finish({ state: 'done', data, info, usage: info });
      },
      fail: (error, meta) =>
        finish({ state: 'failed', info: JSON.stringify(error), errorCode: error.code, ...(meta ? { usage: JSON.stringify(meta) } : {}) }),
      release: async () => {
        ids.delete(entryId);
        await this.#queue._release(this.#feed.name, shard, entryId, job.attempt);
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#feed.drop(this);
    await this.#queue._forget(this);
  }
}
