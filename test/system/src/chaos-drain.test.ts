/**
 * The drain before a chaos run's checks, with a real Redis queue, a real worker writing
 * its usage log, a real shipper and the usage invariant checker on a real PostgreSQL
 * store. The race it pins: a job the client was never told about (its API server died
 * mid-request, or its client gave up) finishes after the acknowledged ones, its record
 * still in the worker's log; the store's record count already matches the ledger's billable
 * jobs thanks to a record the range does not need (an earlier job's). Checked then, the
 * job reads as finished and never recorded. The drain must wait for the queue to empty
 * and for every log to be shipped — not for a count.
 */
import { join } from 'node:path';
import { RedisQueue } from '@ballast/app-queue';
import { settleForChecks } from '@ballast/app-system';
import { Shipper, toRecord, UsageLog } from '@ballast/app-usage';
import { formatReport, verifyUsage } from '@ballast/app-usage/billing';
import { finishedJob, useUsageFixture } from '@ballast/app-usage/testing';
import { ResizeWorker } from '@ballast/app-worker';
import { type RedisServer, startRedis } from '@ballast/test/redis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const usage = useUsageFixture('chaosdrain');
let redis: RedisServer;
let png: Buffer;

beforeAll(async () => {
  redis = await startRedis();
  png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
}, 120_000);
afterAll(async () => {
  await redis?.stop();
});

describe('the drain before the chaos checks', { timeout: 180_000 }, () => {
  it('waits for jobs nobody was told about and for every usage record to be shipped', async () => {
    const { store, cold, billingDir } = usage;
    const fromMs = Date.now();
    const usageRoot = join(usage.root, 'usage');
    const logDir = join(usageRoot, 'worker-1', 'worker-1'); // the launcher's layout: <root>/<machine>/<process>
    const log = await UsageLog.open({ dir: logDir });
    const shipper = await Shipper.open({ dir: logDir, store, intervalMs: 100 });
    const queue = new RedisQueue({ connection: redis.url, minReplicas: 0, prefix: 'drain:', pollMs: 50 });
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const worker = new ResizeWorker({
      queue,
      concurrency: 2,
      name: 'worker-1',
      recordUsage: (u) => log.append(u),
      beforeConvert: (job) => (job.params.hold ? held : undefined),
    }).start();
    try {
      const job = (tenant: string, hold = false) =>
        queue.enqueue({
          data: png,
          params: { resize: { width: 32 }, tenant, ...(hold ? { hold } : {}) },
          deadlineAt: Date.now() + 120_000,
        });
      // A record the range does not need: a job of an hour before, already shipped.
      const hourAgo = fromMs - 3_600_000;
      await store.insert([toRecord(finishedJob(1, { jobId: 'earlier', finishedAt: hourAgo, startedAt: hourAgo, enqueuedAt: hourAgo }))]);
      const acknowledged = await job('t1');
      expect((await queue.wait(acknowledged)).status).toBe('done');
      await shipper.drain();
      const untold = await job('t2'); // its client never heard back: not acknowledged
      expect((await queue.wait(untold)).status).toBe('done');
      const running = await job('t3', true); // still converting when the load stops

      // Not settled: a job in flight, a record in the log. A count says otherwise.
      const mustBill = 2; // the ledger's billable jobs so far: acknowledged and untold
      expect(await store.count()).toBe(mustBill);
      const early = await settleForChecks({ queue, acknowledged: [acknowledged], usageRoot, fromMs, timeoutMs: 1000, pollMs: 100 });
      expect(early).toMatchObject({ queued: 1, unfinished: 0, unshipped: 1 });
      const premature = await verifyUsage({ ledger: queue, store, cold, billingDir, fromMs, toMs: early.toMs });
      expect(premature.discrepancies.map((d) => [d.kind, d.jobId])).toEqual([['missing', untold]]);

      // Settled once the held job is done and the shipper has caught up.
      release();
      shipper.start();
      const settled = await settleForChecks({ queue, acknowledged: [acknowledged], usageRoot, fromMs, timeoutMs: 120_000, pollMs: 100 });
      expect(settled).toMatchObject({ queued: 0, unfinished: 0, unshipped: 0 });
      const report = await verifyUsage({ ledger: queue, store, cold, billingDir, fromMs, toMs: settled.toMs });
      expect(report.ok, formatReport(report)).toBe(true);
      expect(report.jobs).toBe(3);
      expect((await queue.result(running))?.status).toBe('done');
    } finally {
      release();
      await worker.close();
      await log.close();
      await shipper.close();
      await queue.close();
    }
  });
});
