import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { UsageLog } from './log.ts';
import { listSegments, readCheckpoint, segmentName, UsageLogLockedError, unshippedRecords } from './log-dir.ts';
import type { UsageRecord } from './record.ts';
import { Shipper, type UsageSink } from './shipper.ts';
import { UsageStore } from './store.ts';
import { finishedJob } from './testing/fixtures.ts';

let store: UsageStore;
let dir: string;
beforeAll(async () => {
  store = await UsageStore.open({ database: 'memory://' });
});
afterAll(() => store.close());
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ballast-usage-ship-'));
  await store.sql.query('DELETE FROM usage_records');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function writeLog(from: number, count: number, options: { segmentBytes?: number } = {}): Promise<void> {
  const log = await UsageLog.open({ dir, ...options });
  await Promise.all(Array.from({ length: count }, (_, i) => log.append(finishedJob(from + i))));
  await log.close();
}

/** The real store, with faults injected on demand. */
function faulty(fault: { before?: boolean; after?: boolean }): UsageSink {
  return {
    async insert(records: readonly UsageRecord[]) {
      if (fault.before) throw new Error('store unreachable');
      const result = await store.insert(records);
      if (fault.after) throw new Error('connection lost before the confirmation arrived');
      return result;
    },
  };
}

describe('Shipper', () => {
  it('ships every record in batches, moves the checkpoint, and deletes confirmed segments', async () => {
    await writeLog(0, 120, { segmentBytes: 4096 });
    await writeLog(120, 30); // a second writer session: a newer segment
    const shipper = await Shipper.open({ dir, store, batchRecords: 25 });
    expect(await shipper.drain()).toBe(150);
    expect(await store.count()).toBe(150);
    const segments = await listSegments(dir);
    expect(segments).toHaveLength(1); // only the newest (the writer's) is kept
    expect(await readCheckpoint(dir)).toEqual(shipper.stats().checkpoint);
    expect(shipper.stats()).toMatchObject({ records: 150, inserted: 150, duplicates: 0 });
    await shipper.close();
  });

  it('counts the records not shipped yet, across segments, a torn tail not among them', async () => {
    expect(await unshippedRecords(dir)).toBe(0); // no log yet
    await writeLog(0, 40, { segmentBytes: 4096 });
    await writeLog(40, 5);
    appendFileSync(join(dir, segmentName((await listSegments(dir)).at(-1) as number)), Buffer.from([1, 2, 3])); // a crash mid-write
    expect(await unshippedRecords(dir)).toBe(45);
    const shipper = await Shipper.open({ dir, store, batchRecords: 10 });
    await shipper.shipBatch();
    expect(await unshippedRecords(dir)).toBe(35);
    await shipper.drain();
    expect(await unshippedRecords(dir)).toBe(0);
    await shipper.close();
  });

  it('keeps its checkpoint when the store fails, and ships the batch later', async () => {
    await writeLog(0, 10);
    const fault = { before: true };
    const shipper = await Shipper.open({ dir, store: faulty(fault), batchRecords: 4 });
    await expect(shipper.shipBatch()).rejects.toThrow(/store unreachable/);
    expect(await readCheckpoint(dir)).toEqual({ segment: 0, offset: 0 });
    fault.before = false;
    expect(await shipper.drain()).toBe(10);
    expect(await store.count()).toBe(10);
    await shipper.close();
  });

  it('re-ships only the unconfirmed batch after a crash between commit and checkpoint; the store absorbs it', async () => {
    await writeLog(0, 10);
    const first = await Shipper.open({ dir, store: faulty({}), batchRecords: 4 });
    expect(await first.shipBatch()).toBe(4);
    const crashing = await (async () => {
      await first.close();
      return Shipper.open({ dir, store: faulty({ after: true }), batchRecords: 4 });
    })();
    await expect(crashing.shipBatch()).rejects.toThrow(/confirmation/); // records 4–7 stored, checkpoint not moved
    await crashing.close();
    const restarted = await Shipper.open({ dir, store, batchRecords: 4 });
    expect(await restarted.drain()).toBe(6);
    expect(restarted.stats()).toMatchObject({ records: 6, inserted: 2, duplicates: 4 });
    expect(await store.count()).toBe(10);
    await restarted.close();
  });

  it('ships the intact frames of a segment with a torn tail and waits for the rest', async () => {
    await writeLog(0, 3);
    const [segment] = await listSegments(dir);
    appendFileSync(join(dir, segmentName(segment as number)), Buffer.from([0x40, 0x01, 0, 0, 1, 2, 3]));
    const shipper = await Shipper.open({ dir, store });
    expect(await shipper.drain()).toBe(3);
    expect(await shipper.shipBatch()).toBe(0);
    // The writer restarts: it truncates the tail and starts a new segment; shipping goes on.
    await writeLog(3, 2);
    expect(await shipper.drain()).toBe(2);
    expect(await store.count()).toBe(5);
    await shipper.close();
  });

  it('allows one shipper per directory, and leaves no timer behind', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const shipper = (await Shipper.open({ dir, store, intervalMs: 500 })).start();
      await expect(Shipper.open({ dir, store })).rejects.toBeInstanceOf(UsageLogLockedError);
      expect(vi.getTimerCount()).toBe(1);
      await shipper.close();
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('ships in the background as records arrive', async () => {
    const log = await UsageLog.open({ dir });
    const shipper = (await Shipper.open({ dir, store, intervalMs: 20 })).start();
    const shipped = new Promise<void>((resolve) => {
      shipper.events.on('shipped', () => {
        if (shipper.stats().records === 5) resolve();
      });
    });
    for (let i = 0; i < 5; i++) await log.append(finishedJob(i));
    await shipped;
    expect(await store.count()).toBe(5);
    await shipper.close();
    await log.close();
  });

  it('validates its options by name', async () => {
    await expect(Shipper.open({ dir, store, batchRecords: 0 })).rejects.toThrow(
      /batchRecords must be an integer between 1 and 50000, got 0/,
    );
    await expect(Shipper.open({ dir, store: {} as UsageSink })).rejects.toThrow(/insert/);
  });
});

describe('Shipper, concurrent callers', () => {
  it('takes turns between the background loop and drain(): each record shipped once, the checkpoint intact', async () => {
    await store.sql.query('DELETE FROM usage_records');
    const log = await UsageLog.open({ dir });
    const shipper = (await Shipper.open({ dir, store, intervalMs: 1, batchRecords: 7 })).start();
    for (let i = 0; i < 100; i++) await log.append(finishedJob(i));
    await Promise.all([shipper.drain(), shipper.drain(), shipper.drain()]);
    expect(await store.count()).toBe(100);
    expect(shipper.stats().duplicates).toBe(0);
    await shipper.close();
    await log.close();
  });
});
