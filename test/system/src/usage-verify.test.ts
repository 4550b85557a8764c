import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InProcessQueue } from '@ballast/app-queue';
import { sqlString } from '@ballast/app-shared/sql';
import { openRecorder, recordIdFor, toRecord, type UsageStore } from '@ballast/app-usage';
import { type ColdStorage, formatReport, runBilling, verifyUsage } from '@ballast/app-usage/billing';
import { finishedJob, openDuck, useUsageFixture } from '@ballast/app-usage/testing';
import { ResizeWorker } from '@ballast/app-worker';
import sharp from 'sharp';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';

const usage = useUsageFixture('verify');
let store: UsageStore;
let queue: InProcessQueue;
let cold: ColdStorage;
let billingDir: string;
let jobIds: string[];
const started = Date.now();
const today = new Date(started).toISOString().slice(0, 10);
const later = () => started + 3 * 86_400_000;

afterAll(() => queue?.close());

/** Runs real jobs (tiny images, one failing) through a worker that records usage and ships it. */
beforeEach(async () => {
  ({ store, cold, billingDir } = usage);
  await queue?.close();
  queue = new InProcessQueue({ ledgerRetentionMs: 86_400_000 });
  const recorder = await openRecorder({ dir: join(usage.root, 'log', 'w'), store });
  const worker = new ResizeWorker({ queue, concurrency: 2, name: 'w', recordUsage: (u) => recorder.append(u) }).start();
  const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  jobIds = [];
  for (let i = 0; i < 24; i++) {
    const data = i === 5 ? Buffer.from('not an image') : png;
    jobIds.push(await queue.enqueue({ data, params: { resize: { width: 32 }, tenant: `t${i % 3}` }, deadlineAt: Date.now() + 30_000 }));
  }
  for (const id of jobIds) await queue.wait(id);
  await worker.close();
  await recorder.close(); // ships what is left
});

const check = () => verifyUsage({ ledger: queue, store, cold, billingDir, fromMs: started - 3_600_000, toMs: Date.now() + 3_600_000 });
const bill = (purge = true) => runBilling(today, { store, cold, outDir: billingDir, now: later, purge });
const kinds = (report: Awaited<ReturnType<typeof check>>) => report.discrepancies.map((d) => [d.kind, d.jobId]);

describe('verifyUsage', () => {
  it('finds every job recorded once, before billing and after (archived, store purged)', async () => {
    const before = await check();
    expect(before.ok, formatReport(before)).toBe(true);
    expect(before.jobs).toBe(24);
    expect(before.hours.reduce((n, h) => n + h.finished, 0)).toBe(24);
    expect(before.hours.reduce((n, h) => n + h.billed, 0)).toBe(0);
    await bill();
    const after = await check();
    expect(after.ok, formatReport(after)).toBe(true);
    expect(after.hours.reduce((n, h) => n + h.billed, 0)).toBe(24);
    expect(formatReport(after)).toMatch(/OK: every finished job has exactly one usage record/);
  });

  it('reports a finished job whose record was lost', async () => {
    await store.sql.query('DELETE FROM usage_records WHERE record_id = $1', [recordIdFor(jobIds[3] as string)]);
    const report = await check();
    expect(kinds(report)).toEqual([['missing', jobIds[3]]]);
    expect(formatReport(report)).toMatch(new RegExp(`USAGE INVARIANT VIOLATED: 1 missing\\n  missing +job ${jobIds[3]}`));
  });

  it('reports a job counted twice under two record ids, and a record for a job that never finished', async () => {
    const forged = {
      ...toRecord(finishedJob(1, { jobId: jobIds[7] as string, finishedAt: Date.now(), startedAt: Date.now(), enqueuedAt: Date.now() })),
      recordId: 'f'.repeat(32),
    };
    const stray = toRecord(
      finishedJob(2, { jobId: 'never-enqueued', finishedAt: Date.now(), startedAt: Date.now(), enqueuedAt: Date.now() }),
    );
    await store.insert([forged, stray]);
    expect(kinds(await check())).toEqual([
      ['double', jobIds[7]],
      ['orphan', 'never-enqueued'],
    ]);
  });

  it('reports a record archived in two billed periods (billed twice)', async () => {
    const result = await bill();
    const partition = cold.path(cold.partitionKey(today));
    const copy = cold.path(cold.partitionKey('2099-01-01'));
    cpSync(partition, copy, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(copy, 'manifest.json'), 'utf8'));
    manifest.billingPeriod = '2099-01-01';
    manifest.files[0].key = `${cold.partitionKey('2099-01-01')}/part-00000.parquet`;
    writeFileSync(join(copy, 'manifest.json'), JSON.stringify(manifest));
    expect(result.records).toBe(24);
    const report = await check();
    expect(report.discrepancies.filter((d) => d.kind === 'double')).toHaveLength(24);
  });

  it('reports an archived record left off the line items, one billed twice, and an invoice that does not add up', async () => {
    const result = await bill();
    const duck = await openDuck();
    const items = result.files.lineItems;
    const edited = `${items}.edited`;
    await duck.run(`COPY (SELECT * FROM read_parquet(${sqlString(items)}, hive_partitioning = false) WHERE job_id <> ${sqlString(jobIds[2] as string)}
      UNION ALL SELECT * FROM read_parquet(${sqlString(items)}, hive_partitioning = false) WHERE job_id = ${sqlString(jobIds[4] as string)}) TO ${sqlString(edited)} (FORMAT parquet)`);
    duck.close();
    cpSync(edited, items);
    const report = await check();
    const found = kinds(report);
    expect(found).toContainEqual(['unbilled', jobIds[2]]);
    expect(found).toContainEqual(['billed-twice', jobIds[4]]);
    expect(found.filter(([kind]) => kind === 'invoice-mismatch').length).toBeGreaterThan(0);
  });

  it('does not count a replayed record that billing will drop', async () => {
    await bill();
    const [archived] = await store.get([recordIdFor(jobIds[0] as string)]);
    expect(archived).toBeUndefined(); // purged after archiving
    const replay = toRecord(
      finishedJob(9, { jobId: jobIds[0] as string, finishedAt: Date.now(), startedAt: Date.now(), enqueuedAt: Date.now() }),
    );
    await store.insert([replay]);
    const report = await check();
    expect(report.ok, formatReport(report)).toBe(true);
  });
});
