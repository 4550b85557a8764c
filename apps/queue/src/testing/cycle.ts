/**
 * Load for the queue: closed-loop producers that enqueue and wait for each result, and
 * no-op consumers that complete each job at once — a full job cycle with no conversion
 * in it, so what is measured is the queue. Used by the benchmark (`npm run bench:queue`)
 * and by the partition and power-cut scenarios.
 */
import { nearestRank } from '@ballast/common';
import type { JobQueue } from '../types.ts';

/** Options of {@link runCycles}. */
export interface CycleOptions {
  /** Producers enqueueing at once (each waits for its job's result before the next). */
  producers: number;
  /** Consumers completing jobs. */
  consumers: number;
  /** Stop after this many jobs have been enqueued (acknowledged or refused)… */
  jobs?: number;
  /** …or after this long, ms. */
  durationMs?: number;
  /** Marks jobs attended (the producer waits for each). @default true */
  attended?: boolean;
  /** Job id prefix. @default 'j' */
  idPrefix?: string;
}

/** What {@link runCycles} measured. */
export interface CycleReport {
  acknowledged: number;
  refused: number;
  completed: number;
  elapsedMs: number;
  /** Enqueue call to its acknowledgement, ms, one per acknowledged job. */
  ackMs: number[];
  /** Enqueue call to the result in the producer's hands, ms. */
  cycleMs: number[];
}

/**
 * Runs producers against `producerQueue` and consumers against `consumerQueue` (they
 * may be the same handle) until `jobs` or `durationMs` is reached, then waits for
 * every acknowledged job's result and stops the consumers.
 */
export async function runCycles(producerQueue: JobQueue, consumerQueue: JobQueue, options: CycleOptions): Promise<CycleReport> {
  const report: CycleReport = { acknowledged: 0, refused: 0, completed: 0, elapsedMs: 0, ackMs: [], cycleMs: [] };
  const stop = new AbortController();
  const consumers = consumeNoOp(consumerQueue, options.consumers, stop.signal, report);
  await produceCycles(producerQueue, options, report);
  stop.abort(new Error('done'));
  await consumers;
  return report;
}

/**
 * Closed-loop producers: `options.producers` at once, each enqueueing a job and waiting
 * for its result before the next, until `jobs` have been enqueued or `durationMs` has
 * passed; records into `report` (its `elapsedMs` is set at the end).
 */
export async function produceCycles(
  queue: JobQueue,
  options: Pick<CycleOptions, 'producers' | 'jobs' | 'durationMs' | 'attended' | 'idPrefix'>,
  report: CycleReport,
): Promise<void> {
  const started = performance.now();
  const stopAt = started + (options.durationMs ?? Number.POSITIVE_INFINITY);
  const limit = options.jobs ?? Number.POSITIVE_INFINITY;
  const prefix = options.idPrefix ?? 'j';
  let issued = 0;
  const producers = Array.from({ length: options.producers }, async () => {
    while (issued < limit && performance.now() < stopAt) {
      const n = issued++;
      const t0 = performance.now();
      let id: string;
      try {
        id = await queue.enqueue({
          id: `${prefix}${n}`,
          data: Buffer.from('x'),
          params: { tenant: `t${n % 16}` },
          deadlineAt: Date.now() + 600_000,
          attended: options.attended ?? true,
        });
      } catch {
        report.refused++;
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const t1 = performance.now();
      report.acknowledged++;
      report.ackMs.push(t1 - t0);
      await queue.wait(id);
      report.cycleMs.push(performance.now() - t0);
    }
  });
  await Promise.all(producers);
  report.elapsedMs = performance.now() - started;
}

/** No-op consumers: each completes every job it takes at once, until `signal` aborts; then they close. */
export async function consumeNoOp(queue: JobQueue, consumers: number, signal: AbortSignal, report?: CycleReport): Promise<void> {
  await Promise.all(
    Array.from({ length: consumers }, async (_, i) => {
      const consumer = queue.consumer(`c${i}`);
      try {
        while (!signal.aborted) {
          const lease = await consumer.next(signal).catch(() => undefined);
          if (!lease) continue;
          await lease.complete(Buffer.from('ok'), { wallMs: 0 }).then(
            () => {
              if (report) report.completed++;
            },
            () => undefined,
          );
        }
      } finally {
        await consumer.close();
      }
    }),
  );
}

/** The `q` quantile (0–1) of `values`, nearest rank; NaN when empty. */
export function percentile(values: readonly number[], q: number): number {
  return nearestRank(
    [...values].sort((a, b) => a - b),
    q,
  );
}
