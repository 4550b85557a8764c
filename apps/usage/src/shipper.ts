import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { durationMs, Emitter, integer, nonEmptyString } from '@ballast/common';
import { decodeFrames, FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from './frame.ts';
import { type Checkpoint, listSegments, lockDir, readCheckpoint, segmentName, writeCheckpoint } from './log-dir.ts';
import { checkRecord, type UsageRecord } from './record.ts';
import type { InsertResult } from './store.ts';

/** Where a {@link Shipper} sends batches: {@link UsageStore} or anything with its `insert`. */
export interface UsageSink {
  /** Stores a batch idempotently (by record id) and resolves once it is durable. */
  insert(records: readonly UsageRecord[]): Promise<InsertResult>;
}

/** Options of {@link Shipper.open}. */
export interface ShipperOptions {
  /** The log directory to ship (a {@link UsageLog}'s `dir`). One shipper per directory. */
  dir: string;
  /** The store. */
  store: UsageSink;
  /** Most records per batch (one `INSERT`). @default 1000 */
  batchRecords?: number;
  /** Pause when the log has nothing new, ms. @default 1000 */
  intervalMs?: number;
  /** First pause after the store failed, ms; doubles per failure up to 30 s. @default 1000 */
  retryMs?: number;
  /** Wall clock, epoch ms (delay from job finish to confirmation). @default Date.now */
  now?: () => number;
}

/** Events of a {@link Shipper}. */
export interface ShipperEvents {
  /** A batch is on its way to the store (not confirmed yet). */
  sending: { records: number; segment: number; offset: number };
  /** The store confirmed a batch and the checkpoint moved past it. */
  shipped: { records: number; inserted: number; duplicates: number; segment: number; offset: number; maxDelayMs: number };
  /** Segments below the checkpoint were deleted. */
  deleted: { segments: number[] };
  /** The store failed (the batch is retried) or a frame held no valid record (skipped). */
  error: { error: unknown; segment: number };
}

/** Counters of a {@link Shipper}. */
export interface ShipperStats {
  batches: number;
  records: number;
  inserted: number;
  duplicates: number;
  failures: number;
  checkpoint: Checkpoint;
}

/** One batch's worth of intact frames read from the log. */
interface Read {
  records: UsageRecord[];
  /** Offset just past the last frame taken. */
  end: number;
  /** Bytes of the segment after `end`: more frames, a torn tail, or a frame not written yet. */
  rest: number;
}

/**
 * Ships one usage log directory to the store: reads intact frames after the checkpoint,
 * sends them as one batch, and moves the checkpoint (atomically, durably) only after the
 * store confirmed the batch. Killed at any instant, it re-ships at most the one batch the
 * store had not confirmed — which the store's idempotent insert absorbs. Segments wholly
 * below the checkpoint are deleted.
 */
export class Shipper implements AsyncDisposable {
  readonly dir: string;
  readonly events: Emitter<ShipperEvents> = new Emitter<ShipperEvents>();
  readonly #store: UsageSink;
  readonly #batchRecords: number;
  readonly #intervalMs: number;
  readonly #retryMs: number;
  readonly #now: () => number;
  readonly #unlock: () => Promise<void>;
  #checkpoint: Checkpoint;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<unknown> | undefined;
  #failures = 0;
  #closed = false;
  #turn: Promise<unknown> = Promise.resolve();
  readonly #stats = { batches: 0, records: 0, inserted: 0, duplicates: 0, failures: 0 };

  private constructor(options: ShipperOptions, checkpoint: Checkpoint, unlock: () => Promise<void>) {
    this.dir = options.dir;
    this.#store = options.store;
    this.#batchRecords = integer('batchRecords', options.batchRecords ?? 1000, { min: 1, max: 50_000 });
    this.#intervalMs = durationMs('intervalMs', options.intervalMs ?? 1000, { min: 1 });
    this.#retryMs = durationMs('retryMs', options.retryMs ?? 1000, { min: 1 });
    this.#now = options.now ?? Date.now;
    this.#checkpoint = checkpoint;
    this.#unlock = unlock;
  }

  /**
   * Takes the shipper lock of `options.dir` and reads its checkpoint.
   * @throws {UsageLogLockedError} when another live process ships this directory.
   */
  static async open(options: ShipperOptions): Promise<Shipper> {
    nonEmptyString('dir', options.dir);
    if (typeof options.store?.insert !== 'function') throw new TypeError('store must have an insert(records) method');
    const unlock = await lockDir(options.dir, 'shipper');
    try {
      return new Shipper(options, await readCheckpoint(options.dir), unlock);
    } catch (error) {
      await unlock();
      throw error;
    }
  }

  /**
   * Ships one batch (or moves past sealed, fully shipped segments). Resolves with the
   * number of records shipped: 0 when the log has nothing new.
   * @throws whatever the store threw; the checkpoint has not moved.
   */
  shipBatch(): Promise<number> {
    // One batch at a time: the background loop and a caller's drain() take turns.
    const turn = this.#turn.then(() => this.#shipBatch());
    this.#turn = turn.catch(() => {});
    return turn;
  }

  async #shipBatch(): Promise<number> {
    for (;;) {
      const seqs = (await listSegments(this.dir)).filter((s) => s >= this.#checkpoint.segment);
      const current = seqs[0];
      if (current === undefined) return 0;
      const at = current === this.#checkpoint.segment ? this.#checkpoint.offset : 0;
      const read = await this.#read(current, at);
      if (read.records.length > 0 || read.end > at) {
        await this.#send(read.records, { segment: current, offset: read.end });
        return read.records.length;
      }
      const next = seqs[1];
      if (next === undefined) return 0; // the writer's active segment: wait for more
      if (read.rest > 0) {
        const error = new Error(`skipping ${read.rest} damaged bytes at the end of sealed segment ${current}`);
        this.events.emit('error', { error, segment: current });
      }
      await this.#advance({ segment: next, offset: 0 });
    }
  }

  /** Ships until the log has nothing new (or the store fails). Resolves with the records shipped. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.shipBatch();
      total += n;
      if (n === 0) return total;
    }
  }

  /** Ships in the background: a batch whenever the log has records, else every `intervalMs`. Idempotent. */
  start(): this {
    if (this.#timer === undefined && this.#running === undefined && !this.#closed) this.#schedule(0);
    return this;
  }

  stats(): ShipperStats {
    return { ...this.#stats, checkpoint: { ...this.#checkpoint } };
  }

  /** Stops shipping after the batch in flight (if any) and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
    await this.#unlock();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#tick().finally(() => {
        this.#running = undefined;
      });
    }, ms);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    let delay = this.#intervalMs;
    try {
      const n = await this.shipBatch();
      this.#failures = 0;
      if (n > 0) delay = 0;
    } catch (error) {
      this.#failures++;
      this.#stats.failures++;
      this.events.emit('error', { error, segment: this.#checkpoint.segment });
      delay = Math.min(30_000, this.#retryMs * 2 ** Math.min(this.#failures - 1, 15));
    }
    if (!this.#closed) this.#schedule(delay);
  }

  async #read(segment: number, offset: number): Promise<Read> {
    const handle = await open(join(this.dir, segmentName(segment)), 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (!handle) return { records: [], end: offset, rest: 0 };
    try {
      const size = (await handle.stat()).size;
      const length = Math.max(0, Math.min(size - offset, Math.max(this.#batchRecords * 2048, FRAME_HEADER_BYTES + MAX_FRAME_BYTES)));
      const buffer = Buffer.alloc(length);
      if (length > 0) await handle.read(buffer, 0, length, offset);
      const { payloads, ends } = decodeFrames(buffer);
      const take = Math.min(payloads.length, this.#batchRecords);
      const records: UsageRecord[] = [];
      for (let i = 0; i < take; i++) {
        try {
          records.push(checkRecord(JSON.parse((payloads[i] as Buffer).toString('utf8'))));
        } catch (error) {
          // Intact frame, invalid record: cannot happen short of a bug; never block the log on it.
          this.events.emit('error', { error, segment });
        }
      }
      const end = take === 0 ? offset : offset + (ends[take - 1] as number);
      return { records, end, rest: size - end };
    } finally {
      await handle.close();
    }
  }

  async #send(records: UsageRecord[], next: Checkpoint): Promise<void> {
    this.events.emit('sending', { records: records.length, ...this.#checkpoint });
    const result = records.length > 0 ? await this.#store.insert(records) : { inserted: 0, duplicates: 0 };
    await this.#advance(next);
    const now = this.#now();
    let maxDelayMs = 0;
    for (const r of records) maxDelayMs = Math.max(maxDelayMs, now - r.finishedAt);
    this.#stats.batches++;
    this.#stats.records += records.length;
    this.#stats.inserted += result.inserted;
    this.#stats.duplicates += result.duplicates;
    this.events.emit('shipped', { records: records.length, ...result, ...next, maxDelayMs });
  }

  /** Moves the checkpoint durably, then deletes the segments wholly below it. */
  async #advance(next: Checkpoint): Promise<void> {
    await writeCheckpoint(this.dir, next);
    const previous = this.#checkpoint.segment;
    this.#checkpoint = next;
    if (next.segment <= previous) return;
    const old = (await listSegments(this.dir)).filter((s) => s < next.segment);
    for (const seq of old) await unlink(join(this.dir, segmentName(seq))).catch(() => {});
    if (old.length > 0) this.events.emit('deleted', { segments: old });
  }
}
