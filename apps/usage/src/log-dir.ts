import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BallastError } from '@ballast/common';
import { decodeFrames } from './frame.ts';

/**
 * The on-disk layout of one process's usage log directory, shared by the writer
 * ({@link UsageLog}) and the {@link Shipper}:
 *
 * ```
 * segment-0000000000000001.log   framed records (see frame.ts), append-only
 * segment-0000000000000002.log   a newer segment: every older one is sealed
 * checkpoint.json                { "segment": 1, "offset": 4096 }: everything before it is confirmed by the store
 * writer.lock / shipper.lock     pid of the process holding the role
 * ```
 */

/** Where shipping has got to: everything before (`segment`, `offset`) is confirmed by the store. */
export interface Checkpoint {
  segment: number;
  offset: number;
}

const SEGMENT = /^segment-(\d{16})\.log$/;
const CHECKPOINT = 'checkpoint.json';

/** File name of segment `seq`. */
export function segmentName(seq: number): string {
  return `segment-${String(seq).padStart(16, '0')}.log`;
}

/** Sequence numbers of the segments in `dir`, ascending. */
export async function listSegments(dir: string): Promise<number[]> {
  const names = await readdir(dir);
  const seqs: number[] = [];
  for (const name of names) {
    const m = SEGMENT.exec(name);
    if (m) seqs.push(Number(m[1]));
  }
  return seqs.sort((a, b) => a - b);
}

/** The checkpoint in `dir`, or the start of the log when there is none. */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  let text: string;
  try {
    text = await readFile(join(dir, CHECKPOINT), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { segment: 0, offset: 0 };
    throw error;
  }
  const value = JSON.parse(text) as Partial<Checkpoint>;
  if (!Number.isSafeInteger(value.segment) || !Number.isSafeInteger(value.offset) || (value.offset as number) < 0) {
    throw new BallastError('ERR_BALLAST_USAGE_LOG_DAMAGED', `${join(dir, CHECKPOINT)} is not a checkpoint: ${text.slice(0, 200)}`);
  }
  return { segment: value.segment as number, offset: value.offset as number };
}

/**
 * Records of the log in `dir` that the store has not confirmed yet: the intact frames past
 * the checkpoint (a torn tail is not a record). 0 once a shipper has shipped everything the
 * writer put on disk. Read without the locks: while a shipper runs it may count a batch it
 * is confirming, never miss a record.
 */
export async function unshippedRecords(dir: string): Promise<number> {
  const checkpoint = await readCheckpoint(dir);
  let records = 0;
  for (const seq of await listSegments(dir)) {
    if (seq < checkpoint.segment) continue;
    // A segment the shipper deleted meanwhile was confirmed whole.
    const content = await readFile(join(dir, segmentName(seq))).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return Buffer.alloc(0);
      throw error;
    });
    records += decodeFrames(content.subarray(seq === checkpoint.segment ? checkpoint.offset : 0)).payloads.length;
  }
  return records;
}

/** Replaces the checkpoint atomically and durably (temporary file, fsync, rename, fsync of the directory). */
export async function writeCheckpoint(dir: string, checkpoint: Checkpoint): Promise<void> {
  await writeDurably(join(dir, CHECKPOINT), `${JSON.stringify(checkpoint)}\n`);
}

/**
 * Writes `path` so that after a crash at any instant it holds either its old content or
 * the new one, never a mix: a temporary file beside it, fsync'd, renamed over it, and the
 * directory fsync'd so the rename itself is durable.
 */
export async function writeDurably(path: string, content: string | Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
  await syncDir(join(path, '..'));
}

/** fsyncs a directory, making the creation, rename or removal of its entries durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Another live process holds a lock (a usage log's writer or shipper role, a billing run). */
export class UsageLogLockedError extends BallastError {
  readonly path: string;
  readonly pid: number;
  constructor(path: string, what: string, pid: number) {
    super('ERR_BALLAST_USAGE_LOG_LOCKED', `${what} is held by live process ${pid} (lock file ${path}); one at a time`);
    this.path = path;
    this.pid = pid;
  }
}

/**
 * Takes the `role` lock of a usage log directory (creating the directory).
 * @returns a function that releases it.
 * @throws {UsageLogLockedError} when a live process holds it.
 */
export async function lockDir(dir: string, role: 'writer' | 'shipper'): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  return await lockFile(join(dir, `${role}.lock`), `the ${role} role of usage log ${dir}`);
}

/**
 * Takes a lock file (holding this process's pid), taking over one left by a process that
 * no longer exists.
 * @returns a function that releases it.
 * @throws {UsageLogLockedError} when a live process (this one included) holds it.
 */
export async function lockFile(path: string, what: string): Promise<() => Promise<void>> {
  if (held.has(path)) throw new UsageLogLockedError(path, what, process.pid);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, String(process.pid), { flag: 'wx' });
      held.add(path);
      return async () => {
        if (!held.delete(path)) return;
        await unlink(path).catch(() => {});
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(await readFile(path, 'utf8').catch(() => ''));
    if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) {
      throw new UsageLogLockedError(path, what, holder);
    }
    // Left by a process that died (or by an earlier process with this pid): take it over.
    await unlink(path).catch(() => {});
  }
  throw new BallastError('ERR_BALLAST_USAGE_LOG_LOCKED', `could not take the lock ${path}`);
}

/**
 * Moves a finished file into place so that readers see all of it or nothing: fsync'd
 * first, renamed (atomic within one file system), the directory fsync'd.
 */
export async function moveDurably(from: string, to: string): Promise<void> {
  const handle = await open(from, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await mkdir(join(to, '..'), { recursive: true });
  await rename(from, to);
  await syncDir(join(to, '..'));
}

/** Lock files this process holds. */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
