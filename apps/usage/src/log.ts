import { constants } from 'node:fs';
import { type FileHandle, open, readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { BallastError, durationMs, Emitter, integer, nonEmptyString } from '@ballast/common';
import { decodeFrames, encodeFrame } from './frame.ts';
import { listSegments, lockDir, readCheckpoint, segmentName, syncDir } from './log-dir.ts';
import { type FinishedJob, toRecord, type UsageRecord } from './record.ts';

/** Options of {@link UsageLog.open}. */
export interface UsageLogOptions {
  /** This process's log directory (created if missing). One writer per directory. */
  dir: string;
  /** A segment at or past this size is sealed and a new one started, bytes. @default 8_388_608 (8 MiB) */
  segmentBytes?: number;
  /**
   * A segment older than this is sealed at the next commit, ms, so that a quiet log's
   * confirmed records are deleted in time. @default 3_600_000 (1 h)
   */
  segmentMaxAgeMs?: number;
  /**
   * Wait this long after the first record of a batch before committing it, ms, to gather
   * more records per fsync (PostgreSQL's `commit_delay`). 0 commits as soon as the previous
   * fsync returns, which batches by itself under load. @default 0
   */
  commitDelayMs?: number;
  /** Wall clock, epoch ms (segment age). @default Date.now */
  now?: () => number;
}

/** Events of a {@link UsageLog}. */
export interface UsageLogEvents {
  /** A batch of records reached the disk (fsync returned). */
  commit: { records: number; bytes: number; segment: number; ms: number };
  /** A new segment was started. */
  rotate: { segment: number };
}

/** What recovery at open found: a torn tail it truncated. */
export interface TornTail {
  segment: number;
  /** Bytes of intact frames kept. */
  validBytes: number;
  /** Bytes cut off. */
  tornBytes: number;
}

/** Counters of a {@link UsageLog}. */
export interface UsageLogStats {
  appended: number;
  commits: number;
  bytes: number;
  segment: number;
  /** Records waiting for the next fsync. */
  pending: number;
}

/** The usage log could not write (disk full, I/O error) or was closed: nothing appended since is durable. */
export class UsageLogError extends BallastError {
  constructor(message: string, options?: ErrorOptions) {
    super('ERR_BALLAST_USAGE_LOG', message, options);
  }
}

interface Pending {
  frame: Buffer;
  record: UsageRecord;
  resolve: (record: UsageRecord) => void;
  reject: (error: unknown) => void;
}

/**
 * The local, append-only usage log of one process. {@link UsageLog.append} resolves only
 * once the record is on disk (fsync'd): a worker acknowledges a job after that, so a
 * crash at any instant loses no acknowledged usage. Appends that arrive while an fsync
 * runs are written and fsync'd together next (group commit).
 *
 * At open, the newest segment's torn tail (a frame cut short by a crash) is truncated and
 * a new segment is started; older segments are sealed and belong to the {@link Shipper},
 * which deletes them once the store has confirmed them.
 */
export class UsageLog implements AsyncDisposable {
  readonly dir: string;
  /** The torn tail recovery truncated at open, if there was one. */
  readonly recovered: TornTail | undefined;
  readonly events: Emitter<UsageLogEvents> = new Emitter<UsageLogEvents>();
  readonly #segmentBytes: number;
  readonly #segmentMaxAgeMs: number;
  readonly #commitDelayMs: number;
  readonly #now: () => number;
  readonly #unlock: () => Promise<void>;
  #handle: FileHandle;
  #segment: number;
  #segmentSize = 0;
  #segmentStartedAt: number;
  #pending: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #failed: UsageLogError | undefined;
  #closed = false;
  readonly #stats = { appended: 0, commits: 0, bytes: 0 };

  private constructor(
    dir: string,
    options: UsageLogOptions,
    handle: FileHandle,
    segment: number,
    unlock: () => Promise<void>,
    recovered: TornTail | undefined,
  ) {
    this.dir = dir;
    this.recovered = recovered;
    this.#segmentBytes = integer('segmentBytes', options.segmentBytes ?? 8 * 1024 * 1024, { min: 1024 });
    this.#segmentMaxAgeMs = durationMs('segmentMaxAgeMs', options.segmentMaxAgeMs ?? 3_600_000, { min: 1 });
    this.#commitDelayMs = durationMs('commitDelayMs', options.commitDelayMs ?? 0);
    this.#now = options.now ?? Date.now;
    this.#handle = handle;
    this.#segment = segment;
    this.#segmentStartedAt = this.#now();
    this.#unlock = unlock;
  }

  /**
   * Opens the log in `options.dir`: takes the writer lock, truncates a torn tail left by a
   * crash, and starts a new segment.
   * @throws {UsageLogLockedError} when another live process writes to this directory.
   */
  static async open(options: UsageLogOptions): Promise<UsageLog> {
    const dir = nonEmptyString('dir', options.dir);
    // Validate the options before touching the directory.
    integer('segmentBytes', options.segmentBytes ?? 8 * 1024 * 1024, { min: 1024 });
    durationMs('segmentMaxAgeMs', options.segmentMaxAgeMs ?? 3_600_000, { min: 1 });
    durationMs('commitDelayMs', options.commitDelayMs ?? 0);
    const unlock = await lockDir(dir, 'writer');
    try {
      const truncated = await recoverTail(dir);
      const checkpoint = await readCheckpoint(dir);
      const seqs = await listSegments(dir);
      const segment = Math.max(checkpoint.segment, seqs.at(-1) ?? 0) + 1;
      const handle = await createSegment(dir, segment);
      return new UsageLog(dir, options, handle, segment, unlock, truncated);
    } catch (error) {
      await unlock();
      throw error;
    }
  }

  /**
   * Appends the record of a finished job; resolves with it once it is on disk.
   * @throws {InvalidOptionError} when a field of `job` is missing or out of range (nothing is written).
   * @throws {UsageLogError} when the log cannot write or is closed: the record is not durable.
   */
  append(job: FinishedJob): Promise<UsageRecord> {
    if (this.#closed) return Promise.reject(new UsageLogError(`usage log ${this.dir} is closed`));
    if (this.#failed) return Promise.reject(this.#failed);
    let record: UsageRecord;
    let frame: Buffer;
    try {
      record = toRecord(job);
      frame = encodeFrame(Buffer.from(JSON.stringify(record)));
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<UsageRecord>((resolve, reject) => {
      this.#pending.push({ frame, record, resolve, reject });
      this.#stats.appended++;
      this.#flushing ??= this.#flushLoop();
    });
  }

  stats(): UsageLogStats {
    return { ...this.#stats, segment: this.#segment, pending: this.#pending.length };
  }

  /** Commits what is pending, then closes the segment and releases the writer lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#flushing;
    await this.#handle.close().catch(() => {});
    await this.#unlock();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #flushLoop(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        if (this.#commitDelayMs > 0) await new Promise((r) => setTimeout(r, this.#commitDelayMs));
        const batch = this.#pending;
        this.#pending = [];
        await this.#commit(batch);
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  async #commit(batch: Pending[]): Promise<void> {
    const started = performance.now();
    try {
      if (this.#failed) throw this.#failed;
      if (this.#segmentSize >= this.#segmentBytes || this.#now() - this.#segmentStartedAt >= this.#segmentMaxAgeMs) {
        await this.#rotate();
      }
      const bytes = Buffer.concat(batch.map((p) => p.frame));
      await this.#write(bytes);
      this.#stats.commits++;
      this.#stats.bytes += bytes.byteLength;
      this.events.emit('commit', {
        records: batch.length,
        bytes: bytes.byteLength,
        segment: this.#segment,
        ms: performance.now() - started,
      });
      for (const p of batch) p.resolve(p.record);
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  }

  /** Writes and fsyncs `bytes` at the end of the segment; on failure cuts the segment back and fails the log. */
  async #write(bytes: Buffer): Promise<void> {
    const before = this.#segmentSize;
    try {
      let written = 0;
      while (written < bytes.byteLength) {
        const { bytesWritten } = await this.#handle.write(bytes, written, bytes.byteLength - written, before + written);
        written += bytesWritten;
      }
      await this.#handle.datasync();
      this.#segmentSize = before + bytes.byteLength;
    } catch (error) {
      // A partly written batch would hide every later frame from readers: cut it off. If
      // even that fails, stop accepting records (workers then leave their jobs unacknowledged).
      try {
        await this.#handle.truncate(before);
        await this.#handle.datasync();
      } catch {
        this.#failed = new UsageLogError(`usage log ${this.dir} failed and could not be repaired`, { cause: error });
      }
      throw new UsageLogError(`usage log ${this.dir}: write failed (${(error as Error).message})`, { cause: error });
    }
  }

  async #rotate(): Promise<void> {
    const next = this.#segment + 1;
    const handle = await createSegment(this.dir, next);
    await this.#handle.close();
    this.#handle = handle;
    this.#segment = next;
    this.#segmentSize = 0;
    this.#segmentStartedAt = this.#now();
    this.events.emit('rotate', { segment: next });
  }
}

async function createSegment(dir: string, seq: number): Promise<FileHandle> {
  const handle = await open(join(dir, segmentName(seq)), constants.O_CREAT | constants.O_EXCL | constants.O_RDWR, 0o644);
  await syncDir(dir);
  return handle;
}

/** Truncates the torn tail of the newest segment, if any. */
async function recoverTail(dir: string): Promise<TornTail | undefined> {
  const seqs = await listSegments(dir);
  const last = seqs.at(-1);
  if (last === undefined) return undefined;
  const path = join(dir, segmentName(last));
  const content = await readFile(path);
  const { validBytes } = decodeFrames(content);
  if (validBytes === content.byteLength) return undefined;
  await truncate(path, validBytes);
  const handle = await open(path, 'r+');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
  return { segment: last, validBytes, tornBytes: content.byteLength - validBytes };
}
