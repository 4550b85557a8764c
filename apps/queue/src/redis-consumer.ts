import { abortReason } from '@ballast/common';
import type { Redis } from 'ioredis';
import type { Finish, RedisQueue } from './redis.ts';
import { type Consumer, type Job, type Lease, QueueClosedError } from './types.ts';

/** @internal One entry of the stream as a consumer receives it. */
export interface RawEntry {
  entryId: string;
  /** Member id of the producer waiting for it ('' when nobody waits: not attended). */
  producer: string;
  job: Job;
}

/**
 * @internal A consumer of {@link RedisQueue}: one blocking connection for `XREADGROUP`,
 * a timer renewing the leases it holds, a reclaim scan every `blockMs` (and at once when
 * a member is found gone). Its name in the consumer group is `<name>@<member>`, so the
 * jobs of a member found gone can be found.
 */
export class RedisConsumer implements Consumer {
  readonly name: string;
  readonly groupName: string;
  readonly #queue: RedisQueue;
  readonly #held = new Set<string>();
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
      queue._renew(this.groupName, [...this.#held]).catch(() => {});
    }, queue.leaseMs / 3);
    this.#timer.unref();
    await queue.ensureGroup();
    while (true) {
      if (this.#closed) throw new QueueClosedError();
      if (signal?.aborted) throw abortReason(signal);
      let entry: RawEntry | undefined;
      if (performance.now() - this.#lastReclaim >= blockMs || this.#lastHint !== queue.reclaimHint) {
        this.#lastReclaim = performance.now();
        this.#lastHint = queue.reclaimHint;
        entry = await queue._reclaim(this.groupName);
      }
      entry ??= await this.#read(blockMs, signal);
      if (!entry) continue;
      if (this.#closed || signal?.aborted) {
        // Received after we stopped wanting it: hand it straight back.
        await queue._release(this.groupName, entry.entryId, entry.job.attempt);
        continue;
      }
      const lease = await queue._begin(this, entry);
      if (lease) return lease;
    }
  }

  async #read(blockMs: number, signal?: AbortSignal): Promise<RawEntry | undefined> {
    try {
      return await this.#queue._read(this.#client as Redis, this.groupName, blockMs);
    } catch (error) {
      if (this.#closed) throw new QueueClosedError();
      if (String((error as Error).message).includes('NOGROUP')) {
        await this.#queue.ensureGroup();
        return undefined;
      }
      // Failover in progress or Redis unreachable: back off briefly and try again.
      await new Promise((r) => setTimeout(r, 100));
      if (signal?.aborted) throw abortReason(signal);
      return undefined;
    }
  }

  /** @internal */
  _lease(job: Job, entryId: string): Lease {
    this.#held.add(entryId);
    const started = performance.now();
    const finish = async (f: Omit<Finish, 'worker' | 'attempt' | 'serviceMs'>): Promise<void> => {
      try {
        await this.#queue._finish(entryId, job.id, {
          ...f,
          worker: this.name,
          attempt: job.attempt,
          serviceMs: performance.now() - started,
        });
      } finally {
        this.#held.delete(entryId);
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
        this.#held.delete(entryId);
        await this.#queue._release(this.groupName, entryId, job.attempt);
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
