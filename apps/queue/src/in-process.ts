import { randomUUID } from 'node:crypto';
import { abortReason, durationMs, finiteNumber, integer } from '@ballast/common';
import { LedgerLog, ledgerArgs } from './ledger.ts';
import { asBuffer, emptyStats, poison, resolveQueueOptions, unknownJob } from './options.ts';
import { addServiceSample, emptyServicePart, serviceStatsOf } from './service-stats.ts';
import {
  type Consumer,
  type Job,
  type JobInput,
  type JobQueue,
  type JobResult,
  type JobState,
  type Lease,
  type LedgerEntry,
  type LedgerReadOptions,
  QueueClosedError,
  QueueFullError,
  type QueueOptions,
  type QueueStats,
  type ResolvedQueueOptions,
  type ServiceStats,
} from './types.ts';

interface Entry {
  job: Omit<Job, 'attempt'>;
  attempts: number;
  /** Set while a consumer holds the job. */
  lease?: { owner: InProcessConsumer; expiresAt: number; token: number; startedAt: number };
  result?: JobResult;
  /** Epoch ms after which the entry is forgotten. */
  forgetAt: number;
  /** How long the result is kept, ms. */
  ttlMs: number;
}

const EMPTY = Buffer.alloc(0);

type NextWaiter = { consumer: InProcessConsumer; resolve: (lease: Lease) => void; reject: (error: unknown) => void; signal?: AbortSignal };

/** Options of {@link InProcessQueue}. */
export interface InProcessQueueOptions extends QueueOptions {
  /**
   * Most bytes of finished results held for `result()`, bytes: beyond it the oldest
   * results are forgotten before their `resultTtlMs`, so results nobody fetches cannot
   * fill the process's memory. (The Redis queue keeps results in Redis: bound them
   * there with `maxmemory`.)
   * @default 268_435_456 (256 MiB)
   */
  maxResultBytes?: number;
}

/**
 * The embedded queue: the same semantics as {@link RedisQueue} inside one process.
 * FIFO, bounded depth, deadlines, leases renewed while a consumer lives and reclaimed
 * when it stops, at-least-once delivery with the acknowledgement after the result is
 * stored, cancellation. Nothing survives the process.
 */
export class InProcessQueue implements JobQueue {
  readonly kind = 'in-process' as const;
  readonly #options: ResolvedQueueOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #waiting: string[] = [];
  readonly #nextWaiters: NextWaiter[] = [];
  readonly #resultWaiters = new Map<string, Set<(result: JobResult) => void>>();
  readonly #stats: QueueStats = emptyStats();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #maxResultBytes: number;
  /** Finished job ids, oldest first, and the bytes their results hold. */
  readonly #finished = new Set<string>();
  #resultBytes = 0;
  readonly #ledger: LedgerLog;
  readonly #service = emptyServicePart();
  #live = 0;
  #token = 0;
  #closed = false;

  constructor(options: InProcessQueueOptions = {}) {
    this.#options = resolveQueueOptions(options);
    this.#maxResultBytes = integer('maxResultBytes', options.maxResultBytes ?? 256 * 1024 * 1024, { min: 0 });
    this.#ledger = new LedgerLog(this.#options.ledgerRetentionMs);
    // One sweep timer renews nothing and owns nothing: it reclaims expired leases and
    // forgets old results. Unref'd so an idle queue never keeps the process alive.
    this.#timer = setInterval(() => this.#sweep(), Math.max(10, Math.min(this.#options.leaseMs / 3, 1000)));
    this.#timer.unref();
  }

  async enqueue(input: JobInput): Promise<string> {
    if (this.#closed) throw new QueueClosedError();
    finiteNumber('deadlineAt', input.deadlineAt);
    const id = input.id ?? randomUUID();
    if (this.#entries.has(id)) return id; // idempotent per id, like the Redis queue
    if (this.#live >= this.#options.maxDepth) {
      this.#stats.rejectedFull++;
      throw new QueueFullError(this.#options.maxDepth);
    }
    const now = this.#options.now();
    const job = { id, data: asBuffer(input.data), params: input.params, deadlineAt: input.deadlineAt, enqueuedAt: now };
    const ttlMs = input.resultTtlMs === undefined ? this.#options.resultTtlMs : durationMs('resultTtlMs', input.resultTtlMs, { min: 1 });
    this.#entries.set(id, { job, attempts: 0, ttlMs, forgetAt: Math.max(now, input.deadlineAt) + ttlMs });
    this.#live++;
    this.#stats.enqueued++;
    this.#waiting.push(id);
    this.#dispatch();
    return id;
  }

  wait(id: string, signal?: AbortSignal): Promise<JobResult> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const entry = this.#entries.get(id);
    if (!entry) return Promise.reject(unknownJob(id));
    if (entry.result) return Promise.resolve(entry.result);
    return new Promise<JobResult>((resolve, reject) => {
      let set = this.#resultWaiters.get(id);
      if (!set) this.#resultWaiters.set(id, (set = new Set()));
      const onAbort = (): void => {
        set.delete(done);
        if (set.size === 0) this.#resultWaiters.delete(id);
        reject(abortReason(signal as AbortSignal));
      };
      const done = (result: JobResult): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(result);
      };
      set.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async result(id: string): Promise<JobState | undefined> {
    const entry = this.#entries.get(id);
    if (!entry) return undefined;
    return entry.result ?? { id, status: 'pending' };
  }

  async cancel(id: string): Promise<boolean> {
    const entry = this.#entries.get(id);
    if (!entry || entry.result) return false;
    const index = this.#waiting.indexOf(id);
    if (index >= 0) this.#waiting.splice(index, 1);
    this.#stats.cancelled++;
    this.#finish(entry, { id, status: 'cancelled' }, { attempt: entry.attempts });
    return true;
  }

  consumer(name: string): Consumer {
    return new InProcessConsumer(this, name);
  }

  async depth(): Promise<number> {
    return this.#live;
  }

  async oldestWaitingAgeMs(): Promise<number> {
    const id = this.#waiting[0];
    const job = id === undefined ? undefined : this.#entries.get(id)?.job;
    return job === undefined ? 0 : Math.max(0, this.#options.now() - job.enqueuedAt);
  }

  async ping(): Promise<void> {
    if (this.#closed) throw new QueueClosedError();
  }

  stats(): QueueStats {
    return { ...this.#stats, depth: this.#live };
  }

  async *ledger(fromMs: number, toMs: number, options?: LedgerReadOptions): AsyncIterableIterator<LedgerEntry> {
    ledgerArgs(fromMs, toMs, options);
    yield* this.#ledger.range(fromMs, toMs, this.#options.now());
  }

  async serviceStats(): Promise<ServiceStats> {
    return serviceStatsOf([this.#service], this.#options.serviceHalfLifeMs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const waiter of this.#nextWaiters.splice(0)) waiter.reject(new QueueClosedError());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- used by InProcessConsumer -----------------------------------------------------

  /** @internal */
  _next(consumer: InProcessConsumer, signal?: AbortSignal): Promise<Lease> {
    if (this.#closed) return Promise.reject(new QueueClosedError());
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<Lease>((resolve, reject) => {
      const waiter: NextWaiter = { consumer, resolve, reject, signal };
      const onAbort = (): void => {
        const i = this.#nextWaiters.indexOf(waiter);
        if (i >= 0) this.#nextWaiters.splice(i, 1);
        reject(abortReason(signal as AbortSignal));
      };
      waiter.resolve = (lease) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(lease);
      };
      waiter.reject = (error) => {
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#nextWaiters.push(waiter);
      this.#dispatch();
    });
  }

  /** @internal Renews every lease `owner` holds. */
  _renew(owner: InProcessConsumer): void {
    const expiresAt = this.#options.now() + this.#options.leaseMs;
    for (const entry of this.#entries.values()) if (entry.lease?.owner === owner) entry.lease.expiresAt = expiresAt;
  }

  /** @internal */
  _abandon(owner: InProcessConsumer): void {
    for (let i = this.#nextWaiters.length - 1; i >= 0; i--) {
      const waiter = this.#nextWaiters[i] as NextWaiter;
      if (waiter.consumer !== owner) continue;
      this.#nextWaiters.splice(i, 1);
      waiter.reject(new QueueClosedError());
    }
  }

  get leaseMs(): number {
    return this.#options.leaseMs;
  }

  #dispatch(): void {
    while (this.#nextWaiters.length > 0 && this.#waiting.length > 0) {
      const id = this.#waiting.shift() as string;
      const entry = this.#entries.get(id);
      if (!entry || entry.result) continue;
      const now = this.#options.now();
      const worker = (this.#nextWaiters[0] as NextWaiter).consumer.name;
      if (now > entry.job.deadlineAt) {
        this.#stats.expired++;
        this.#finish(entry, { id, status: 'expired' }, { attempt: entry.attempts + 1, worker });
        continue;
      }
      entry.attempts++;
      if (entry.attempts > this.#options.maxAttempts) {
        this.#stats.failed++;
        this.#finish(entry, { id, status: 'failed', error: poison(id, this.#options.maxAttempts) }, { attempt: entry.attempts, worker });
        continue;
      }
      const waiter = this.#nextWaiters.shift() as NextWaiter;
      const token = ++this.#token;
      entry.lease = { owner: waiter.consumer, expiresAt: now + this.#options.leaseMs, token, startedAt: now };
      waiter.resolve(this.#lease(entry, token));
    }
  }

  #lease(entry: Entry, token: number): Lease {
    const job: Job = { ...entry.job, attempt: entry.attempts };
    const held = (): boolean => entry.lease?.token === token;
    const { owner, startedAt } = entry.lease as NonNullable<Entry['lease']>;
    const ran = (usage?: Record<string, unknown>): LedgerFacts => {
      addServiceSample(
        this.#service,
        { ms: Math.max(0, this.#options.now() - startedAt), at: this.#options.now() },
        this.#options.serviceHalfLifeMs,
      );
      return { attempt: job.attempt, worker: owner.name, usage };
    };
    return {
      job,
      complete: async (data, meta) => {
        if (entry.result) return;
        this.#stats.completed++;
        this.#finish(entry, { id: job.id, status: 'done', data: asBuffer(data), meta }, ran(meta));
      },
      fail: async (error, meta) => {
        if (entry.result) return;
        this.#stats.failed++;
        this.#finish(entry, { id: job.id, status: 'failed', error }, ran(meta));
      },
      release: async () => {
        if (!held() || entry.result) return;
        entry.lease = undefined;
        entry.attempts--;
        this.#waiting.unshift(job.id);
        this.#dispatch();
      },
    };
  }

  #finish(entry: Entry, result: JobResult, facts: LedgerFacts): void {
    if (!entry.result) this.#live--;
    const tenant = entry.job.params.tenant;
    this.#ledger.append(
      {
        jobId: result.id,
        ...(typeof tenant === 'string' ? { tenant } : {}),
        outcome: result.status,
        ...(facts.worker === undefined ? {} : { worker: facts.worker }),
        attempt: facts.attempt,
        ...(facts.usage === undefined ? {} : { usage: facts.usage }),
        ...(result.status === 'failed' ? { errorCode: result.error.code } : {}),
      },
      this.#options.now(),
    );
    // The input is no longer needed once the job is final: keep only the result.
    if (entry.job.data.byteLength > 0) entry.job = { ...entry.job, data: EMPTY };
    entry.result = result;
    entry.lease = undefined;
    entry.forgetAt = this.#options.now() + entry.ttlMs;
    this.#finished.add(result.id);
    this.#resultBytes += resultBytes(result);
    const waiters = this.#resultWaiters.get(result.id);
    if (waiters) {
      this.#resultWaiters.delete(result.id);
      for (const done of waiters) done(result);
    }
    for (const id of this.#finished) {
      if (this.#resultBytes <= this.#maxResultBytes) break;
      this.#forget(id);
    }
  }

  #forget(id: string): void {
    const entry = this.#entries.get(id);
    this.#entries.delete(id);
    this.#finished.delete(id);
    if (entry?.result) this.#resultBytes -= resultBytes(entry.result);
  }

  #sweep(): void {
    const now = this.#options.now();
    const reclaimed: string[] = [];
    for (const [id, entry] of this.#entries) {
      if (entry.result) {
        if (now >= entry.forgetAt && !this.#resultWaiters.has(id)) this.#forget(id);
      } else if (entry.lease && now >= entry.lease.expiresAt) {
        entry.lease = undefined;
        this.#stats.reclaimed++;
        reclaimed.push(id);
      }
    }
    if (reclaimed.length > 0) {
      // Reclaimed jobs are the oldest work in the system: they go first.
      this.#waiting.unshift(...reclaimed);
      this.#dispatch();
    }
  }
}

/** What the ledger records about who finished a job. */
interface LedgerFacts {
  attempt: number;
  worker?: string;
  usage?: Record<string, unknown>;
}

function resultBytes(result: JobResult): number {
  return result.status === 'done' ? result.data.byteLength : 0;
}

class InProcessConsumer implements Consumer {
  readonly name: string;
  readonly #queue: InProcessQueue;
  readonly #timer: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(queue: InProcessQueue, name: string) {
    this.#queue = queue;
    this.name = name;
    this.#timer = setInterval(() => queue._renew(this), Math.max(10, queue.leaseMs / 3));
    this.#timer.unref();
  }

  next(signal?: AbortSignal): Promise<Lease> {
    if (this.#closed) return Promise.reject(new QueueClosedError());
    return this.#queue._next(this, signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#queue._abandon(this);
  }
}
