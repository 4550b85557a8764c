import { BallastError, isBallastError } from '@ballast/common';

/** Resize parameters and any other JSON the producer attaches to a job. */
export type JobParams = Record<string, unknown>;

/** What a producer hands to {@link JobQueue.enqueue}. */
export interface JobInput {
  /** Job id; a random UUID when omitted. Must be unique among live jobs. */
  id?: string;
  /** The payload (the image bytes). */
  data: Uint8Array;
  /** JSON parameters (resize options, tenant, request id). */
  params: JobParams;
  /** Absolute deadline, epoch ms (`Date.now()` scale, shared across processes). Expired jobs are dropped, not processed. */
  deadlineAt: number;
  /**
   * How long this job's result is kept once finished, ms. A producer that waits for the
   * result itself (a sync request) sets it short, so delivered results do not pile up.
   * @default the queue's `resultTtlMs`
   */
  resultTtlMs?: number;
  /**
   * True when the producer itself waits for the result (a sync request): if the producer
   * is gone before the job starts (its process died, so nobody can deliver the result),
   * the job is dropped as an orphan instead of converted, and recorded as `cancelled`
   * with reason `orphaned`. Leave it unset for jobs whose result is fetched later.
   * @default false
   */
  attended?: boolean;
}

/** A job as a consumer receives it. */
export interface Job {
  readonly id: string;
  readonly data: Buffer;
  readonly params: JobParams;
  readonly deadlineAt: number;
  /** When the job was enqueued, epoch ms. */
  readonly enqueuedAt: number;
  /** 1 on first delivery; higher when the job was reclaimed from a consumer that died. */
  readonly attempt: number;
}

/** The final outcome of a job, stored by the queue and returned to whoever waits. */
export type JobResult =
  | { readonly id: string; readonly status: 'done'; readonly data: Buffer; readonly meta: Record<string, unknown> }
  | { readonly id: string; readonly status: 'failed'; readonly error: { code: string; message: string } }
  | { readonly id: string; readonly status: 'expired' }
  | { readonly id: string; readonly status: 'cancelled' };

/** What {@link JobQueue.result} reports for a job id. */
export type JobState = JobResult | { readonly id: string; readonly status: 'pending' };

/**
 * A job handed to one consumer. The job stays owned by that consumer while the lease is
 * renewed; if the consumer dies (stops renewing), the queue gives the job to another one.
 * The job is acknowledged only once its result is stored: at-least-once delivery.
 */
export interface Lease {
  readonly job: Job;
  /** Stores the result, then acknowledges the job. */
  complete(data: Uint8Array, meta: Record<string, unknown>): Promise<void>;
  /**
   * Stores a failure, then acknowledges the job (the job is not retried). `meta` is the
   * worker's metering of the failed attempt (CPU, bytes), recorded in the ledger.
   */
  fail(error: { code: string; message: string }, meta?: Record<string, unknown>): Promise<void>;
  /** Gives the job back at once for another consumer (graceful shutdown). */
  release(): Promise<void>;
}

/** A named consumer pulling jobs one at a time. */
export interface Consumer {
  readonly name: string;
  /**
   * Waits for the next live job: expired jobs are recorded as `expired`, cancelled
   * ones skipped, and jobs held by dead consumers reclaimed. Rejects with
   * `signal.reason` when `signal` aborts.
   */
  next(signal?: AbortSignal): Promise<Lease>;
  /** Stops renewing leases and releases connections. Leases still held are reclaimed after `leaseMs`. */
  close(): Promise<void>;
}

/** Counters and gauges of one queue handle. */
export interface QueueStats {
  /** Jobs waiting or in progress. */
  depth: number;
  enqueued: number;
  rejectedFull: number;
  completed: number;
  failed: number;
  expired: number;
  cancelled: number;
  reclaimed: number;
  /** Jobs dropped before they started because their producer was gone (see {@link JobInput.attended}). */
  orphaned: number;
}

/** Final outcomes recorded in the {@link JobQueue.ledger}. */
export type LedgerOutcome = 'done' | 'failed' | 'expired' | 'cancelled';

/**
 * One job that reached a final state, recorded once — the first time only, even when
 * at-least-once delivery ran the job twice — in the same atomic step that stored its
 * result, so the entry is exactly as durable as the result.
 */
export interface LedgerEntry {
  jobId: string;
  /** `params.tenant` of the job when it was a string. */
  tenant?: string;
  outcome: LedgerOutcome;
  /** Why a job was cancelled without a `cancel()` call: `orphaned` (its producer was gone before it started). */
  reason?: 'orphaned';
  /** When the final state was stored, epoch ms (the Redis primary's clock in Redis mode). */
  finishedAt: number;
  /** Consumer that stored it; absent for a job cancelled through `cancel()`. */
  worker?: string;
  /** Delivery that finished it: 1 on first delivery, 0 when it never was delivered. */
  attempt: number;
  /** The worker's metering (`meta` of `complete()` or `fail()`), when it reported one. */
  usage?: Record<string, unknown>;
  /** The failure's code, for `failed`. */
  errorCode?: string;
}

/** Options of {@link JobQueue.ledger}. */
export interface LedgerReadOptions {
  /** Entries fetched per round trip. @default 500 */
  batchSize?: number;
}

/**
 * Recent service times (how long a consumer held a job, from delivery to its result:
 * the conversion's wall time plus the queue's own step), over every consumer of the
 * queue, sync and async jobs alike. Maintained by the queue where results are stored,
 * so every API server reads the same figures. Robust estimates (median, p90, clamped
 * mean) are computed from `recentMs`; `meanMs` is a plain time-decayed mean that one
 * pathological sample can move.
 */
export interface ServiceStats {
  /** Service times recorded over the queue's life (every shard). */
  samples: number;
  /** Time-decayed mean, ms: each sample's weight halves every `serviceHalfLifeMs`. 0 before any sample. */
  meanMs: number;
  /** The latest samples, newest first (at most {@link SERVICE_RING_SIZE}), ms. */
  recentMs: number[];
  /** Median of `recentMs`, ms (0 when empty). */
  medianMs: number;
  /** 90th percentile of `recentMs`, ms (0 when empty). */
  p90Ms: number;
  /** Mean of `recentMs` with each sample clamped to at most 4 × `medianMs`, ms: one outlier moves it by at most 4 × median / n. */
  clampedMeanMs: number;
  /** When the newest sample was recorded, epoch ms (0 when none): how fresh the evidence is. */
  updatedAt: number;
}

/** Samples kept in {@link ServiceStats.recentMs}. */
export const SERVICE_RING_SIZE = 64;

/**
 * A FIFO job queue with deadlines, bounded depth, at-least-once delivery,
 * reclaim of jobs from dead consumers and cancellation. Two implementations:
 * {@link InProcessQueue} and {@link RedisQueue}.
 */
export interface JobQueue extends AsyncDisposable {
  /** Which implementation, for logs and `/readyz`. */
  readonly kind: 'in-process' | 'redis';
  /**
   * Adds a job. Resolves with its id once it is durable (for Redis: replicated to
   * `minReplicas` replicas).
   * @throws {QueueFullError} when `maxDepth` jobs are waiting or in progress.
   * @throws {QueueUnavailableError} when the queue cannot be reached or did not replicate in time.
   */
  enqueue(input: JobInput): Promise<string>;
  /** Resolves with the job's result once stored; rejects with `signal.reason` on abort. */
  wait(id: string, signal?: AbortSignal): Promise<JobResult>;
  /** The job's state now, or undefined when the id is unknown (never existed or forgotten). */
  result(id: string): Promise<JobState | undefined>;
  /** Cancels a job that has not started; true when it was pending. Its result becomes `cancelled`. */
  cancel(id: string): Promise<boolean>;
  /** A consumer for workers. */
  consumer(name: string): Consumer;
  /** Jobs waiting or in progress. */
  depth(): Promise<number>;
  /**
   * How long the oldest job not yet taken by a worker has waited, ms (0 when none waits).
   * Optional: the gateway's dashboard and the API's `ballast_api_queue_oldest_job_age_seconds` read it when present.
   */
  oldestWaitingAgeMs?(): Promise<number>;
  /** Resolves when the queue is reachable; rejects otherwise. */
  ping(): Promise<void>;
  stats(): QueueStats;
  /**
   * Every job that reached a final state with `fromMs <= finishedAt < toMs`, oldest
   * first, one entry per job. Entries are kept `ledgerRetentionMs`.
   */
  ledger(fromMs: number, toMs: number, options?: LedgerReadOptions): AsyncIterableIterator<LedgerEntry>;
  /** Service times of recent jobs over every consumer; one cheap read. */
  serviceStats(): Promise<ServiceStats>;
  close(): Promise<void>;
}

/** Base class of queue errors. */
export class QueueError extends BallastError {}

/** The queue holds `maxDepth` jobs already. */
export class QueueFullError extends QueueError {
  readonly maxDepth: number;
  constructor(maxDepth: number) {
    super('ERR_BALLAST_QUEUE_FULL', `queue is full (${maxDepth} jobs waiting or in progress)`);
    this.maxDepth = maxDepth;
  }
}

/** The queue could not be reached, or a write was not replicated in time. */
export class QueueUnavailableError extends QueueError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_BALLAST_QUEUE_UNAVAILABLE', message, options);
  }
}

/** The queue handle was closed. */
export class QueueClosedError extends QueueError {
  constructor() {
    super('ERR_BALLAST_QUEUE_CLOSED', 'queue is closed');
  }
}

/** True for any queue error from any copy of this package. */
export function isQueueError(value: unknown): value is QueueError {
  return isBallastError(value) && value.code.startsWith('ERR_BALLAST_QUEUE_');
}

/** Shared options of both implementations. */
export interface QueueOptions {
  /** Most jobs waiting or in progress; enqueue beyond it throws {@link QueueFullError}. @default 1000 */
  maxDepth?: number;
  /** How long a consumer owns a job without renewing before another may reclaim it, ms. Leases are renewed every `leaseMs / 3` while held. @default 10000 */
  leaseMs?: number;
  /** How long finished results are kept for `result()` / `wait()`, ms. @default 600000 (10 min) */
  resultTtlMs?: number;
  /** Deliveries after which a job that keeps killing its consumers is failed instead of retried. @default 3 */
  maxAttempts?: number;
  /** Wall clock, epoch ms, for deadlines shared across processes. @default Date.now */
  now?: () => number;
  /**
   * How long ledger entries are kept, ms. Size it to how often the ledger is read: in
   * Redis an entry takes about 250 bytes, so an hour at 1,000 jobs/s is about 0.9 GB.
   * @default 3600000 (1 h)
   */
  ledgerRetentionMs?: number;
  /** Half-life of a sample's weight in {@link ServiceStats.meanMs}, ms. @default 10000 */
  serviceHalfLifeMs?: number;
}

/** Validated defaults of {@link QueueOptions}. */
export interface ResolvedQueueOptions {
  maxDepth: number;
  leaseMs: number;
  resultTtlMs: number;
  maxAttempts: number;
  now: () => number;
  ledgerRetentionMs: number;
  serviceHalfLifeMs: number;
}
