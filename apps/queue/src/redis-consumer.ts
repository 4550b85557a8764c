import { abortReason } from '@ballast/common';
import type { Redis } from 'ioredis';
import type { Finish, RedisQueue } from './redis.ts';
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

/**
 * @internal A consumer of {@link RedisQueue}: one blocking connection for `XREADGROUP`,
 * a timer renewing the leases it holds, a reclaim scan every `blockMs` (and at once when
 * a member is found gone). Its name in the consumer group is `<name>@<member>`, so the
 * jobs of a member found gone can be found. With several shards it reads them in turn.
 */
export class RedisConsumer implements Consumer {
  readonly name: string;
  readonly groupName: string;
  readonly #queue: RedisQueue;
  /** Entries held, by shard. */
  readonly #held = new Map<number, Set<string>>();
  /** Shard to look at first next time: non-empty shards take turns (fair consumption). */
  #turn = 0;
  #client: Redis | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastReclaim = Number.NEGATIVE_INFINITY;
  #lastHint = 0;
  #closed = false;

  constructor(queue: RedisQueue, name: string, groupName: string) {
    this.#queue = queue;
    this.name = name;
    this.groupName = groupName;
  }

  async next(signal?: AbortSignal): Promise<Lease> {
    const queue = this.#queue;
    const blockMs = queue.blockMs;
    this.#client ??= queue._duplicate();
    this.#timer ??= setInterval(() => {
      for (const [shard, ids] of this.#held) if (ids.size > 0) queue._renew(this.groupName, shard, [...ids]).catch(() => {});
    }, queue.leaseMs / 3);
    this.#timer.unref();
    if (queue.shardCount === 1) await queue.ensureGroup(0);
    while (true) {
      if (this.#closed) throw new QueueClosedError();
      if (signal?.aborted) throw abortReason(signal);
      let entry: RawEntry | undefined;
      if (performance.now() - this.#lastReclaim >= blockMs || this.#lastHint !== queue.reclaimHint) {
        this.#lastReclaim = performance.now();
        this.#lastHint = queue.reclaimHint;
        entry = await queue._reclaim(this.groupName);
      }
      entry ??= queue.shardCount === 1 ? await this.#read(0, blockMs, signal) : await this.#sweep(blockMs, signal);
      if (!entry) continue;
      if (this.#closed || signal?.aborted) {
        // Received after we stopped wanting it: hand it straight back.
        await queue._release(this.groupName, entry.shard, entry.entryId, entry.job.attempt);
        continue;
      }
      const lease = await queue._begin(this, entry);
      if (lease) return lease;
    }
  }

  /**
   * Several shards: looks at each once without blocking, starting after the last one
   * that served (so busy shards take turns), then blocks briefly on one. A shard that
   * does not answer within 250 ms (failing over, hung) is skipped for a second; an entry
   * it delivers late is handed back at once.
   */
  async #sweep(blockMs: number, signal?: AbortSignal): Promise<RawEntry | undefined> {
    const queue = this.#queue;
    const n = queue.shardCount;
    const start = this.#turn;
    const release = (late: RawEntry): Promise<void> => queue._release(this.groupName, late.shard, late.entryId, late.job.attempt);
    for (let k = 0; k < n; k++) {
      const shard = (start + k) % n;
      if (!queue._usable(shard)) continue;
      const entry = await queue._within(shard, queue._read(undefined, this.groupName, shard), release);
      if (entry) {
        this.#turn = (shard + 1) % n;
        return entry;
      }
    }
    this.#turn = (start + 1) % n;
    const block = Math.min(blockMs, 100);
    if (!queue._usable(start)) {
      await new Promise((r) => setTimeout(r, block));
      return undefined;
    }
    return queue._within(start, this.#read(start, block, signal), release, block + 250);
  }

  async #read(shard: number, blockMs: number, signal?: AbortSignal): Promise<RawEntry | undefined> {
    try {
      return await this.#queue._read(this.#client as Redis, this.groupName, shard, blockMs);
    } catch (error) {
      if (this.#closed) throw new QueueClosedError();
      if (String((error as Error).message).includes('NOGROUP')) {
        await this.#queue.ensureGroup(shard, true);
        return undefined;
      }
      // Failover in progress or Redis unreachable: back off briefly and try again.
      await new Promise((r) => setTimeout(r, 100));
      if (signal?.aborted) throw abortReason(signal);
      return undefined;
    }
  }

  /** @internal */
  _lease(job: Job, shard: number, entryId: string, producer: string): Lease {
    let held = this.#held.get(shard);
    if (!held) this.#held.set(shard, (held = new Set()));
    const ids = held;
    ids.add(entryId);
    const started = performance.now();
    const finish = async (f: Omit<Finish, 'worker' | 'attempt' | 'serviceMs' | 'producer'>): Promise<void> => {
      try {
        const serviceMs = performance.now() - started;
        await this.#queue._finish(shard, entryId, job.id, { ...f, worker: this.name, attempt: job.attempt, serviceMs, producer });
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
        await this.#queue._release(this.groupName, shard, entryId, job.attempt);
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#client?.disconnect();
    this.#queue._forget(this);
  }
}
