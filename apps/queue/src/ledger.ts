import { integer } from '@ballast/common';
import type { LedgerEntry, LedgerReadOptions } from './types.ts';

/** Validates the arguments of `JobQueue.ledger()`; returns the batch size. */
export function ledgerArgs(fromMs: number, toMs: number, options: LedgerReadOptions = {}): number {
  integer('fromMs', fromMs, { min: 0 });
  integer('toMs', toMs, { min: 0 });
  return integer('batchSize', options.batchSize ?? 500, { min: 1, max: 100_000 });
}

/**
 * The in-process ledger: entries in the order they were recorded (their `finishedAt`
 * never decreases, even if the wall clock steps back), forgotten after `retentionMs`.
 */
export class LedgerLog {
  readonly #retentionMs: number;
  #entries: LedgerEntry[] = [];
  #start = 0;

  constructor(retentionMs: number) {
    this.#retentionMs = retentionMs;
  }

  /** Records `entry`, stamping `finishedAt` with `now` (or the last stamp, if later). */
  append(entry: Omit<LedgerEntry, 'finishedAt'>, now: number): void {
    const last = this.#entries[this.#entries.length - 1];
    const finishedAt = Math.max(now, last?.finishedAt ?? 0);
    this.#entries.push({ ...entry, finishedAt } as LedgerEntry);
    this.#trim(now);
  }

  /** Entries with `fromMs <= finishedAt < toMs`, oldest first. */
  *range(fromMs: number, toMs: number, now: number): Generator<LedgerEntry> {
    this.#trim(now);
    let lo = this.#start;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#entries[mid] as LedgerEntry).finishedAt < fromMs) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.#entries.length; i++) {
      const entry = this.#entries[i] as LedgerEntry;
      if (entry.finishedAt >= toMs) return;
      yield { ...entry };
    }
  }

  #trim(now: number): void {
    const horizon = now - this.#retentionMs;
    while (this.#start < this.#entries.length && (this.#entries[this.#start] as LedgerEntry).finishedAt < horizon) this.#start++;
    if (this.#start > 1024 && this.#start * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#start);
      this.#start = 0;
    }
  }
}
