/**
 * The usage invariant under failures, with real processes: worker processes (sharp, the
 * Redis queue, the fsync'd usage log), a separate shipper process, the billing command,
 * a real PostgreSQL and Redis. After each failure the checker must find every finished
 * job billed exactly once: 0 lost, 0 counted twice.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisQueue } from '@ballast/app-queue';
import { sampleJpeg } from '@ballast/app-worker';
import { type PostgresServer, startPostgres } from '@ballast/test/postgres';
import { type RedisServer, type RedisTopology, startRedis, startRedisTopology } from '@ballast/test/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ColdStorage } from '../src/archive.ts';
import { UsageStore } from '../src/store.ts';
import { formatReport, verifyUsage } from '../src/verify.ts';
import { run, type Service, startService } from './processes.ts';

const WORKER = 'apps/worker/src/main.ts';
const SHIPPER = 'apps/usage/src/cli/shipper.ts';
const BILLING = 'apps/usage/src/cli/billing.ts';

let pg: PostgresServer;
let image: Buffer;
let database = 0;
const cleanup: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  pg = await startPostgres();
  image = await sampleJpeg({ width: 1600, height: 1200 });
});
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
});
afterAll(() => pg?.stop());

interface Setup {
  env: Record<string, string>;
  queue: RedisQueue;
  store: UsageStore;
  root: string;
  cold: ColdStorage;
  billingDir: string;
}

/** A fresh database, usage directories, and a queue handle for the test (producer and ledger reader). */
async function setup(
  redis: { url?: string; sentinels?: Array<{ host: string; port: number }> },
  env: Record<string, string> = {},
): Promise<Setup> {
  const root = mkdtempSync(join(tmpdir(), 'ballast-usage-failures-'));
  cleanup.push(async () => rmSync(root, { recursive: true, force: true }));
  const url = await pg.createDatabase(`failures_${++database}`);
  const store = await UsageStore.open({ database: url });
  cleanup.push(() => store.close());
  const sentinels = redis.sentinels?.map((s) => `${s.host}:${s.port}`).join(',');
  const queue = new RedisQueue({
    connection: redis.sentinels ? { sentinels: redis.sentinels, name: 'ballast' } : redis.url,
    minReplicas: redis.sentinels ? 1 : 0,
    leaseMs: 2000,
    ledgerRetentionMs: 3_600_000,
  });
  cleanup.push(() => queue.close());
  return {
    env: {
      ...(sentinels
        ? { BALLAST_REDIS_SENTINELS: sentinels, BALLAST_REDIS_MIN_REPLICAS: '1' }
        : { BALLAST_REDIS_URL: redis.url as string, BALLAST_REDIS_MIN_REPLICAS: '0' }),
      BALLAST_QUEUE_LEASE_MS: '2000',
      BALLAST_WORKER_CONCURRENCY: '2',
      BALLAST_USAGE_DIR: join(root, 'log'),
      BALLAST_USAGE_DATABASE: url,
      BALLAST_USAGE_COLD_DIR: join(root, 'cold'),
      BALLAST_USAGE_BILLING_DIR: join(root, 'billing'),
      BALLAST_USAGE_SHIP_INTERVAL_MS: '100',
      ...env,
    },
    queue,
    store,
    root,
    cold: new ColdStorage(join(root, 'cold')),
    billingDir: join(root, 'billing'),
  };
}

function worker(s: Setup, name: string): Service {
  const service = startService(WORKER, { ...s.env, BALLAST_WORKER_NAME: name });
  cleanup.push(() => service.kill());
  return service;
}

async function enqueue(s: Setup, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const failing = i % 10 === 9; // a failed conversion burns CPU and is billed too
    ids.push(
      await s.queue.enqueue({
        data: failing ? image.subarray(0, 20_000) : image,
        params: { resize: { width: 800, format: 'webp' }, tenant: `tenant-${i % 3}` },
        deadlineAt: Date.now() + 120_000,
      }),
    );
  }
  return ids;
}

async function finished(s: Setup): Promise<number> {
  let n = 0;
  for await (const _ of s.queue.ledger(0, Date.now() + 60_000)) n++;
  return n;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function check(s: Setup, jobs: number): Promise<void> {
  const report = await verifyUsage({
    ledger: s.queue,
    store: s.store,
    cold: s.cold,
    billingDir: s.billingDir,
    fromMs: 0,
    toMs: Date.now() + 60_000,
  });
  expect(report.ok, formatReport(report)).toBe(true);
  expect(report.jobs).toBe(jobs);
}

describe('usage under failures', { timeout: 180_000 }, () => {
  it('kill -9 of a worker mid-job: the restarted worker recovers its log; 0 lost, 0 counted twice', async () => {
    const redis: RedisServer = await startRedis();
    cleanup.push(() => redis.stop());
    const s = await setup(redis);
    let w = worker(s, 'w1');
    await w.line((l) => l.includes('"port"'));
    const ids = await enqueue(s, 40);
    await until('a few jobs finished', async () => (await finished(s)) >= 6);
    await w.kill(); // two conversions in flight
    w = worker(s, 'w1');
    await Promise.all(ids.map((id) => s.queue.wait(id)));
    expect(await w.stop()).toBe(0); // graceful: ships what is left
    expect(await s.store.count()).toBe(40);
    const attempts: number[] = [];
    for await (const entry of s.queue.ledger(0, Date.now() + 60_000)) attempts.push(entry.attempt);
    expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2); // a job the killed worker held ran again
    await check(s, 40);
  });

  it('kill -9 of a separate shipper mid-batch, three times: it re-ships only what was unconfirmed', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const s = await setup(redis, {
      BALLAST_USAGE_SHIP: 'external',
      BALLAST_USAGE_BATCH_RECORDS: '3',
      BALLAST_USAGE_SHIP_INTERVAL_MS: '20',
    });
    const w = worker(s, 'w1');
    await w.line((l) => l.includes('"port"'));
    const ids = await enqueue(s, 30);
    for (let kill = 0; kill < 3; kill++) {
      const shipper = startService(SHIPPER, s.env);
      cleanup.push(() => shipper.kill());
      await shipper.line((l) => l.includes('"msg":"sending"'));
      await shipper.kill();
    }
    const shipper = startService(SHIPPER, s.env);
    cleanup.push(() => shipper.kill());
    await Promise.all(ids.map((id) => s.queue.wait(id)));
    await until('every record in the store', async () => (await s.store.count()) === 30);
    await shipper.stop();
    await w.stop();
    await check(s, 30);
  });

  it('kill -9 of the billing job at every step and at random: the re-run finishes it, byte-identical; 0 lost, 0 double', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const s = await setup(redis);
    const w = worker(s, 'w1');
    await w.line((l) => l.includes('"port"'));
    const ids = await enqueue(s, 20);
    await Promise.all(ids.map((id) => s.queue.wait(id)));
    await w.stop();
    const period = new Date().toISOString().slice(0, 10);
    const args = ['--period', period, '--as-of', new Date(Date.now() + 2 * 86_400_000).toISOString()];
    for (const step of ['claim', 'archive', 'verify', 'price']) {
      const billing = startService(BILLING, s.env, args);
      cleanup.push(() => billing.kill());
      await billing.line((l) => l.includes(`"step":"${step}"`));
      await billing.kill();
    }
    for (const delayMs of [150, 400, 900]) {
      const billing = startService(BILLING, s.env, args);
      cleanup.push(() => billing.kill());
      await new Promise((r) => setTimeout(r, delayMs));
      await billing.kill();
    }
    const final = await run(BILLING, s.env, args);
    expect(final.code, final.stdout).toBe(0);
    const files = [
      join(s.billingDir, `billing_period=${period}`, 'invoices.json'),
      join(s.billingDir, `billing_period=${period}`, 'invoices.txt'),
      join(s.billingDir, `billing_period=${period}`, 'line-items.parquet'),
      s.cold.path(`${s.cold.partitionKey(period)}/manifest.json`),
      s.cold.path(`${s.cold.partitionKey(period)}/part-00000.parquet`),
    ];
    const bytes = files.map((f) => readFileSync(f));
    const again = await run(BILLING, s.env, args);
    expect(again.code).toBe(0);
    for (const [i, f] of files.entries()) expect(readFileSync(f).equals(bytes[i] as Buffer), f).toBe(true);
    const invoices = JSON.parse(readFileSync(files[0] as string, 'utf8'));
    expect(invoices.archive.rows).toBe(20);
    expect(await s.store.count()).toBe(0); // archived, verified, purged
    await check(s, 20);
  });

  it('a Redis primary failover under load: 0 lost, 0 counted twice', async () => {
    const topology: RedisTopology = await startRedisTopology({ replicas: 2, sentinels: 3 });
    cleanup.push(() => topology.stop());
    const s = await setup({ sentinels: topology.sentinelAddresses });
    const w = worker(s, 'w1');
    await w.line((l) => l.includes('"port"'));
    const ids = await enqueue(s, 40);
    await until('a few jobs finished', async () => (await finished(s)) >= 8);
    await topology.primary.crash();
    await Promise.all(ids.map((id) => s.queue.wait(id)));
    expect(await w.stop()).toBe(0);
    await check(s, 40);
  });
});
