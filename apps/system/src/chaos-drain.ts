/**
 * The drain before a chaos run's invariants are checked. The usage checker compares the
 * queue's completion ledger with the usage store, so it must see a settled system: no job
 * still running, and every usage record a worker wrote shipped. Otherwise a job that
 * finished just before the checked range closed, its record still in a worker's log
 * waiting for the shipper's next batch, reads as a record lost.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobQueue } from '@ballast/app-queue';
import { unshippedRecords } from '@ballast/app-usage';
import { sleep } from '@ballast/common';

/** Options of {@link settleForChecks}. */
export interface SettleOptions {
  queue: Pick<JobQueue, 'depth' | 'ledger'>;
  /** Jobs the client was told were accepted: each must reach the ledger. */
  acknowledged: Iterable<string>;
  /** Root of the usage logs: every log directory under it (two levels deep) must be shipped. */
  usageRoot: string;
  /** Start of the run (the ledger is read from a minute before). */
  fromMs: number;
  /** Longest wait of each step, ms. @default 120000 */
  timeoutMs?: number;
  /** Pause between polls, ms. @default 500 */
  pollMs?: number;
  /** A line per step that gave up. */
  log?: (line: string) => void;
}

/** What {@link settleForChecks} waited for, and what was still outstanding when a step gave up. */
export interface Settled {
  /** End of the range to check: every job of the ledger that finished before it has its record shipped. */
  toMs: number;
  /** Jobs still waiting or in flight (0: the queue emptied). */
  queued: number;
  /** Acknowledged jobs not in the ledger. */
  unfinished: number;
  /** Usage records still in the logs (0: everything written was shipped). */
  unshipped: number;
}

/**
 * Waits, each step up to `timeoutMs`, until (1) the queue holds no job — not only the
 * acknowledged ones: a job whose client was answered 5xx or gave up still runs and bills;
 * (2) every acknowledged job is in the ledger; then closes the range and (3) waits until
 * every usage log has been shipped, so that every job the range holds has its record in
 * the store unless it was never written. Counting the store's records against the ledger
 * is no such test: records of jobs that expired after they ran (and of jobs outside the
 * range) make up for a record not shipped yet.
 */
export async function settleForChecks(options: SettleOptions): Promise<Settled> {
  const { queue, usageRoot, fromMs } = options;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const pollMs = options.pollMs ?? 500;
  const log = options.log ?? (() => {});
  // A read can meet a connection the client is replacing (after a failover): read again.
  const poll = async (outstanding: () => Promise<number>, what: string): Promise<number> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = await outstanding().catch(() => Number.POSITIVE_INFINITY);
      if (left === 0) return 0;
      if (Date.now() > deadline) {
        log(`  ${Number.isFinite(left) ? left : 'unknown'} ${what} after ${timeoutMs / 1000} s`);
        return left;
      }
      await sleep(pollMs);
    }
  };
  const queued = await poll(() => queue.depth(), 'jobs still in the queue');
  const acknowledged = [...options.acknowledged];
  const unfinished = await poll(async () => {
    const finished = new Set<string>();
    for await (const e of queue.ledger(Math.max(0, fromMs - 60_000), Date.now() + 60_000)) finished.add(e.jobId);
    return acknowledged.filter((id) => !finished.has(id)).length;
  }, 'acknowledged jobs not in the ledger');
  const toMs = Date.now() + 1;
  const unshipped = await poll(() => unshippedUnder(usageRoot), 'usage records not shipped');
  return { toMs, queued, unfinished, unshipped };
}

/** Records not yet shipped in every usage log under `root` (a log per directory, one or two levels down). */
export async function unshippedUnder(root: string): Promise<number> {
  let records = 0;
  for (const dir of await subdirectories(root)) {
    records += await unshippedRecords(dir);
    for (const inner of await subdirectories(dir)) records += await unshippedRecords(inner);
  }
  return records;
}

async function subdirectories(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
}
