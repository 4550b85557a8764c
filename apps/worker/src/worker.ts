import { availableParallelism, hostname } from 'node:os';
import { failoverRetry, type Job, type JobQueue, type Lease, parseResizeParams, type ResizeParams } from '@ballast/app-queue';
import type { Logger } from '@ballast/app-shared';
import { Emitter, integer, isInvalidOptionError } from '@ballast/common';
import sharp from 'sharp';
import { CpuMeter } from './cpu-meter.ts';
import {
  type Converted,
  failureDetail,
  isImageError,
  type ResizeLimits,
  type ResolvedLimits,
  resizeImage,
  resolveLimits,
} from './resize.ts';

/** What one finished job cost: the record usage billing is built from (see `@ballast/app-usage`). */
export interface JobUsage {
  jobId: string;
  /** Tenant the job was enqueued for, when the producer set one. */
  tenant?: string;
  requestId?: string;
  worker: string;
  attempt: number;
  /** `done` (converted) or `failed` (refused or failed because of its input). */
  outcome: 'done' | 'failed';
  /** The failure's code, for `failed`. */
  errorCode?: string;
  /** CPU time attributed to this conversion, ms. */
  cpuMs: number;
  /** Wall time of the conversion, ms. */
  wallMs: number;
  /** Time the job waited in the queue before this attempt started, ms. */
  queuedMs: number;
  bytesIn: number;
  bytesOut: number;
  /** Input format and pixels (width × height × frames read), from the header; absent when it could not be read. */
  formatIn?: string;
  pixelsIn?: number;
  /** Output format (the requested one for `failed`). */
  format: string;
  width: number;
  height: number;
  /** Output pixels, all frames (0 for `failed`). */
  pixelsOut: number;
  /** Epoch ms: enqueued, this attempt started, the conversion ended. */
  enqueuedAt: number;
  startedAt: number;
  finishedAt: number;
}

/** Events of a {@link ResizeWorker}. */
export interface ResizeWorkerEvents {
  /** A job was converted and its result stored. The usage hook: subscribe to bill by CPU time and bytes. */
  done: JobUsage;
  /** A job failed because of its input; the failure was stored as its result. */
  failed: {
    jobId: string;
    requestId?: string;
    worker: string;
    code: string;
    message: string;
    wallMs: number;
    /** What libvips said, for the log (the stored failure carries only the fixed message). */
    detail?: string;
  };
  /** Something outside the job went wrong (the queue was unreachable); the job, if any, will be retried elsewhere. */
  error: { worker: string; error: unknown; jobId?: string; requestId?: string };
}

/** Options of {@link ResizeWorker}. */
export interface ResizeWorkerOptions {
  /** The queue to consume. */
  queue: JobQueue;
  /** Name of this worker; consumer names derive from it. @default `worker-<hostname>-<pid>` */
  name?: string;
  /** Conversions run at once. @default os.availableParallelism() */
  concurrency?: number;
  /** Limits against hostile input. */
  limits?: ResizeLimits;
  /** Runs before each conversion: a seam for tracing (and for tests that need a job to be in progress). */
  beforeConvert?: (job: Job) => Promise<void> | void;
  /**
   * Records a finished job's usage (converted or failed by its input) before the job is
   * acknowledged: the usage log's `append`, which resolves once the record is on disk. A job
   * whose usage cannot be recorded is left unacknowledged, to run again elsewhere.
   */
  recordUsage?: (usage: JobUsage) => Promise<unknown>;
  /**
   * How long storing a job's result is retried while the queue is unavailable (a Redis
   * failover), ms, before the job is left to be reclaimed and run again elsewhere: size
   * it to the queue's failover. @default 10000
   */
  finishRetryMs?: number;
}

/** A snapshot of a worker's counters. */
export interface ResizeWorkerStats {
  active: number;
  done: number;
  failed: number;
  cpuMs: number;
  wallMs: number;
  bytesIn: number;
  bytesOut: number;
}

/**
 * Consumes resize jobs and converts them with sharp, `concurrency` at a time (one
 * libvips thread each, so the cores are used without oversubscription). Each job's
 * result is stored before it is acknowledged; a worker that dies mid-job leaves its
 * job to be reclaimed by another. Emits one `done` event per conversion with its CPU
 * time, wall time and bytes.
 */
export class ResizeWorker {
  readonly name: string;
  readonly concurrency: number;
  readonly events: Emitter<ResizeWorkerEvents> = new Emitter<ResizeWorkerEvents>();
  readonly #queue: JobQueue;
  readonly #limits: ResolvedLimits;
  readonly #beforeConvert: ResizeWorkerOptions['beforeConvert'];
  readonly #recordUsage: ResizeWorkerOptions['recordUsage'];
  readonly #meter = new CpuMeter();
  readonly #failover = failoverRetry();
  readonly #finishRetryMs: number;
  readonly #abort = new AbortController();
  readonly #stats: ResizeWorkerStats = { active: 0, done: 0, failed: 0, cpuMs: 0, wallMs: 0, bytesIn: 0, bytesOut: 0 };
  #loops: Promise<void>[] = [];

  constructor(options: ResizeWorkerOptions) {
    this.#queue = options.queue;
    this.name = options.name ?? `worker-${hostname()}-${process.pid}`;
    this.concurrency = integer('concurrency', options.concurrency ?? availableParallelism(), { min: 1, max: 256 });
    this.#limits = resolveLimits(options.limits);
    this.#beforeConvert = options.beforeConvert;
    this.#recordUsage = options.recordUsage;
    this.#finishRetryMs = integer('finishRetryMs', options.finishRetryMs ?? 10_000, { min: 0 });
    // One thread per conversion: `concurrency` conversions then use `concurrency` cores.
    sharp.concurrency(1);
    sharp.cache(false);
  }

  /** Starts consuming. Idempotent. */
  start(): this {
    if (this.#loops.length > 0 || this.#abort.signal.aborted) return this;
    for (let slot = 0; slot < this.concurrency; slot++) this.#loops.push(this.#loop(`${this.name}-${slot}`));
    return this;
  }

  stats(): ResizeWorkerStats {
    return { ...this.#stats };
  }

  /** Stops taking jobs, finishes those in progress, and releases the queue consumers. */
  async close(): Promise<void> {
    this.#abort.abort(new Error('worker closing'));
    await Promise.all(this.#loops);
    this.#failover[Symbol.dispose]();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #loop(consumerName: string): Promise<void> {
    const consumer = this.#queue.consumer(consumerName);
    const signal = this.#abort.signal;
    try {
      while (!signal.aborted) {
        let lease: Lease;
        try {
          lease = await consumer.next(signal);
        } catch (error) {
          if (signal.aborted) break;
          this.events.emit('error', { worker: consumerName, error });
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        await this.#run(consumerName, lease);
      }
    } finally {
      await consumer.close();
    }
  }

  async #run(worker: string, lease: Lease): Promise<void> {
    const { job } = lease;
    const ids = { jobId: job.id, ...(typeof job.params.requestId === 'string' ? { requestId: job.params.requestId } : {}) };
    this.#stats.active++;
    const started = performance.now();
    const startedAt = Date.now();
    let token: number | undefined;
    let params: ResizeParams | undefined;
    try {
      await this.#beforeConvert?.(job);
      params = parseResizeParams((job.params.resize ?? {}) as Record<string, unknown>);
      token = this.#meter.begin();
      const out = await resizeImage(job.data, params, this.#limits, { deadlineAt: job.deadlineAt });
      const cpuMs = this.#meter.end(token);
      token = undefined;
      const usage = this.#usage(job, worker, started, startedAt, cpuMs, out);
      await this.#recordUsage?.(usage); // on disk before the job is acknowledged
      // Stored once even if sent again: a failover in between is ridden out, not paid with a rerun.
      await this.#failover.run(() => lease.complete(out.data, { ...usage }), Date.now() + this.#finishRetryMs);
      this.#stats.done++;
      this.#stats.cpuMs += cpuMs;
      this.#stats.wallMs += usage.wallMs;
      this.#stats.bytesIn += usage.bytesIn;
      this.#stats.bytesOut += usage.bytesOut;
      this.events.emit('done', usage);
    } catch (error) {
      const cpuMs = token === undefined ? 0 : this.#meter.end(token);
      if (isImageError(error) || isInvalidOptionError(error)) {
        const failure = { code: error.code, message: error.message };
        try {
          const usage: JobUsage = {
            ...this.#usage(job, worker, started, startedAt, cpuMs, undefined, params),
            outcome: 'failed',
            errorCode: error.code,
          };
          await this.#recordUsage?.(usage);
          await this.#failover.run(() => lease.fail(failure, { ...usage }), Date.now() + this.#finishRetryMs);
          this.#stats.failed++;
          const detail = failureDetail(error);
          this.events.emit('failed', { ...ids, worker, ...failure, wallMs: performance.now() - started, ...(detail ? { detail } : {}) });
        } catch (storeError) {
          this.events.emit('error', { ...ids, worker, error: storeError });
        }
        // The slot stays taken until libvips has really stopped: `concurrency` bounds the cores used.
        if (isImageError(error) && error.stopped) await error.stopped;
      } else {
        // Not the input's fault (the queue is unreachable, the result or its usage could not
        // be stored): leave the job unacknowledged so it is reclaimed and run again.
        this.events.emit('error', { ...ids, worker, error });
      }
    } finally {
      this.#stats.active--;
    }
  }

  /** The usage of a job that ends now: converted (`out`), or failed (no `out`). */
  #usage(job: Job, worker: string, started: number, startedAt: number, cpuMs: number, out?: Converted, params?: ResizeParams): JobUsage {
    const wallMs = performance.now() - started;
    const usage: JobUsage = {
      jobId: job.id,
      worker,
      attempt: job.attempt,
      outcome: 'done',
      cpuMs,
      wallMs,
      queuedMs: Math.max(0, startedAt - job.enqueuedAt),
      bytesIn: job.data.byteLength,
      bytesOut: out?.data.byteLength ?? 0,
      format: out?.format ?? params?.format ?? 'unknown',
      width: out?.width ?? 0,
      height: out?.height ?? 0,
      pixelsOut: out ? out.width * out.height : 0,
      enqueuedAt: job.enqueuedAt,
      startedAt,
      finishedAt: Date.now(),
    };
    if (out) {
      usage.formatIn = out.input.format;
      usage.pixelsIn = out.input.pixels;
    }
    if (typeof job.params.tenant === 'string') usage.tenant = job.params.tenant;
    if (typeof job.params.requestId === 'string') usage.requestId = job.params.requestId;
    return usage;
  }
}

/**
 * Sends a worker's events to a logger, through a child carrying `service: 'worker'`: one
 * `info` line per converted job (with its request id, CPU and wall time) or job failed by
 * its input (the client's doing), `error` for the rest.
 * @returns a function that unsubscribes.
 */
export function logWorker(worker: ResizeWorker, logger: Logger): () => void {
  const log = logger.child({ service: 'worker' });
  const offs = [
    worker.events.on('done', (u) => log.info(u, 'job done')),
    worker.events.on('failed', (f) => log.info(f, 'job failed')),
    worker.events.on('error', ({ error, ...rest }) => log.error({ ...rest, err: error }, 'worker error')),
  ];
  return () => {
    for (const off of offs) off();
  };
}
