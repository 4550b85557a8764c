import { type PostgresServer, startPostgres } from '@ballast/test/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toRecord } from './record.ts';
import { UsageStore } from './store.ts';
import { finishedJob } from './testing/fixtures.ts';

describe.each(['postgres', 'pglite'] as const)('UsageStore (%s)', (kind) => {
  let server: PostgresServer | undefined;
  let store: UsageStore;
  beforeAll(async () => {
    if (kind === 'postgres') server = await startPostgres();
    store = await UsageStore.open({ database: server ? await server.createDatabase('usage') : 'memory://' });
  });
  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });

  it('inserts a batch once: a replay and a job that ran twice change nothing', async () => {
    const batch = Array.from({ length: 50 }, (_, i) => toRecord(finishedJob(i)));
    expect(await store.insert(batch)).toEqual({ inserted: 50, duplicates: 0 });
    expect(await store.insert(batch)).toEqual({ inserted: 0, duplicates: 50 });
    const rerun = toRecord(finishedJob(7, { attempt: 2, worker: 'worker-b-1', cpuMs: 99 }));
    expect(await store.insert([rerun, toRecord(finishedJob(50))])).toEqual({ inserted: 1, duplicates: 1 });
    expect(await store.count()).toBe(51);
    const [kept] = await store.get([rerun.recordId]);
    expect(kept).toEqual(batch[7]);
  });

  it('claims a billing period once, including earlier unbilled records, and nothing on a re-run', async () => {
    const end = Date.UTC(2026, 9, 4);
    const run = await store.claim('2026-10-03', end, Date.UTC(2026, 9, 5));
    expect(run.records).toBe(51);
    await store.insert([toRecord(finishedJob(100))]); // late: arrives after the run
    const again = await store.claim('2026-10-03', end, Date.UTC(2026, 9, 6));
    expect(again).toEqual(run);
    expect(await store.claimedCount('2026-10-03')).toBe(51);
    expect(await store.purge('2026-10-03', Date.UTC(2026, 9, 6))).toBe(51);
    expect(await store.count()).toBe(1);
  });

  it('creates its tables from many connections at once without colliding', async () => {
    await Promise.all(Array.from({ length: 4 }, () => store.migrate()));
    expect(await store.count()).toBe(1);
  });
});
