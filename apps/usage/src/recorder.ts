import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageLog, type UsageLogOptions } from './log.ts';
import { lockDir, unshippedRecords } from './log-dir.ts';
import type { FinishedJob, UsageRecord } from './record.ts';
import { Shipper, type ShipperOptions, type UsageSink } from './shipper.ts';
import { UsageStore } from './store.ts';

/** Options of {@link openRecorder}. */
export interface RecorderOptions {
  /** This process's log directory. */
  dir: string;
  /**
   * Ship the log from this process: a {@link UsageStore} (shared, not closed by the recorder),
   * or the store's `database` to open (in the background: recording starts at once; closed
   * with the recorder). Omit when a separate shipper process ships the directory.
   */
  store?: UsageStore | string;
  /** Extra options of the log. */
  log?: Omit<UsageLogOptions, 'dir'>;
  /** Extra options of the shipper. */
  shipper?: Omit<ShipperOptions, 'dir' | 'store'>;
  /**
   * The root of every process's log directory: when shipping in process, the logs that dead
   * processes left there are shipped too, once, at open (see {@link adoptOrphans}).
   */
  adoptFrom?: string;
}

/**
 * What a process that finishes jobs uses to record their usage: its local log, and (unless
 * a separate process ships it) a shipper to the store. `append` is the worker's hook: it
 * resolves once the record is on disk, before the job is acknowledged.
 */
export interface Recorder extends AsyncDisposable {
  readonly log: UsageLog;
  /** The store once it is open (undefined when shipping is left to another process). */
  readonly store: Promise<UsageStore | undefined>;
  append(job: FinishedJob): Promise<UsageRecord>;
  /** Ships what the log holds now (when shipping in process). */
  flush(): Promise<void>;
  /** Stops shipping, closes the log (pending records committed), and the store if the recorder opened it. */
  close(): Promise<void>;
}

/** Opens a process's usage log and, when given a store, ships it in the background. */
export async function openRecorder(options: RecorderOptions): Promise<Recorder> {
  const log = await UsageLog.open({ ...options.log, dir: options.dir });
  const owned = typeof options.store === 'string';
  const target = options.store;
  let shipper: Shipper | undefined;
  // The store may take seconds to open (PGlite): records go to the log meanwhile.
  const ready = (async () => {
    if (target === undefined) return undefined;
    const store = typeof target === 'string' ? await UsageStore.open({ database: target }) : target;
    shipper = (await Shipper.open({ ...options.shipper, dir: options.dir, store })).start();
    if (options.adoptFrom !== undefined) await adoptOrphans(options.adoptFrom, store, options.dir).catch(() => 0);
    return store;
  })();
  ready.catch(() => {}); // reported by flush() and close()
  const close = async (): Promise<void> => {
    await log.close();
    const store = await ready.catch(() => undefined);
    if (shipper) {
      // Ship what the log got before stopping; what cannot be shipped now stays in the log.
      await shipper.drain().catch(() => {});
      await shipper.close();
    }
    if (owned) await store?.close();
  };
  return {
    log,
    store: ready,
    append: (job) => log.append(job),
    flush: async () => {
      await ready;
      await shipper?.drain();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * Ships the logs that processes which died left under `root` (their writer gone, no shipper
 * on them) and removes each directory once all of it is confirmed: a worker restarted under a
 * new name (its pid) still gets its predecessor's records billed. Directories with a live
 * writer or shipper are left alone. Resolves with the records shipped.
 */
export async function adoptOrphans(root: string, store: UsageSink, ownDir?: string): Promise<number> {
  let shipped = 0;
  const names = await readdir(root).catch(() => [] as string[]);
  for (const name of names) {
    const dir = join(root, name);
    if (dir === ownDir || !(await stat(dir).catch(() => undefined))?.isDirectory()) continue;
    let unlockWriter: (() => Promise<void>) | undefined;
    try {
      unlockWriter = await lockDir(dir, 'writer'); // no live writer: nobody appends while we ship
      const shipper = await Shipper.open({ dir, store });
      try {
        shipped += await shipper.drain();
      } finally {
        await shipper.close();
      }
      if ((await unshippedRecords(dir)) === 0) await rm(dir, { recursive: true, force: true });
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_BALLAST_USAGE_LOG_LOCKED') throw error;
    } finally {
      await unlockWriter?.();
    }
  }
  return shipped;
}
