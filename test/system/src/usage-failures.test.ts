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
import { UsageStore } from '@ballast/app-usage';
import { ColdStorage, formatReport, verifyUsage } from '@ballast/app-usage/billing';
import { sampleJpeg } from '@ballast/app-worker';
import { type PostgresServer, startPostgres } from '@ballast/test/postgres';
import { type RedisServer, type RedisTopology, startRedis, startRedisTopology } from '@ballast/test/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { run, type Service, startService } from './services.ts';

const WORKER = 'apps/worker/src/main.ts';
const SHIPPER = 'apps/usage/src/cli/shipper.ts';
const BILLING = 'apps/usage/src/cli/billing.ts';

let pg: PostgresServer;
let image: Buffer;
/** A quarter of the pixels of `image`: the failover test's load, light enough for a loaded 2-core machine. */
let smallImage: Buffer;
let database = 0;
const cleanup: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  pg = await startPostgres();
  image = await sampleJpeg({ width: 1600, height: 1200 });
  smallImage = await sampleJpeg({ width: 800, height: 600 });
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

async function enqueue(s: Setup, count: number, data = image): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const failing = i % 10 === 9; // a failed conversion burns CPU and is billed too
    ids.push(
      await s.queue.enqueue({
        data: failing ? data.subarray(0, 20_000) : data,
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

/**
 * Polls `progress` until it reaches `target`. Fails only when it stops moving for `stallMs`:
 * a slow machine gets the time it needs, a stuck system fails with what it reached. A poll
 * that throws (the queue between two primaries) counts as no progress.
 */
async function progressTo(what: string, target: number, progress: () => Promise<number>, stallMs = 60_000): Promise<void> {
  let best = -1;
  let movedAt = Date.now();
  let lastError: unknown;
  for (;;) {
    const reached = await progress().catch((error: unknown) => {
      lastError = error;
      return best;
    });
    if (reached >= target) return;
    if (reached > best) {
      best = reached;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > stallMs) {
      const last = lastError === undefined ? '' : ` (last poll failed: ${(lastError as Error)?.message ?? lastError})`;
      throw new Error(`${what}: stuck at ${best} of ${target} for ${stallMs} ms${last}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls each job's state until none is pending; resolves with how many are done and failed. */
async function settled(s: Setup, ids: readonly string[]): Promise<{ done: number; failed: number }> {
  const states = new Map<string, string>();
  await progressTo('every job settled', ids.length, async () => {
    for (const id of ids) {
      if (states.has(id)) continue;
      const state = await s.queue.result(id);
      if (state !== undefined && state.status !== 'pending') states.set(id, state.status);
    }
    return states.size;
  });
  const statuses = [...states.values()];
  return { done: statuses.filter((x) => x === 'done').length, failed: statuses.filter((x) => x === 'failed').length };
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

// Real processes on a machine shared with other work: each wait below polls real state (a
// line printed, a count reached) and fails on its own when nothing happens; the time limit
// is a safety net (a kill -9 run took 160 s at a load average of 20).
describe('usage under failures', { timeout: 600_000 }, () => {
  it('kill -9 of a worker mid-job: the restarted worker recovers its log; 0 lost, 0 counted twice', async () => {
    const redis: RedisServer = await startRedis();
    cleanup.push(() => redis.stop());
    const s = await setup(redis);
    let w = worker(s, 'w1');
    await w.line((l) => l.includes('"port"'));
    const ids = await enqueue(s, 40);
    await progressTo('a few jobs finished', 6, () => finished(s));
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
    await progressTo('every record in the store', 30, () => s.store.count());
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

  // Bounded work (40 small conversions, two at a time), and waits that poll the queue's real
  // state and fail only when progress stops: the time limit is a safety net for a machine
  // shared with other work, not what the test measures.
  it('a Redis primary failover under load: 0 lost, 0 counted twice', { timeout: 900_000 }, async () => {
    const topology: RedisTopology = await startRedisTopology({ replicas: 2, sentinels: 3 });
    cleanup.push(() => topology.stop());
    const s = await setup({ sentinels: topology.sentinelAddresses });
    const w = worker(s, 'w1');
    await w.line((l) => l.includes('"port"'), 600_000); // rejects at once if the worker exits
    const ids = await enqueue(s, 40, smallImage);
    await progressTo('a few jobs finished', 8, () => finished(s));
    const before = await topology.currentPrimary();
    const finishedBefore = await finished(s);
    await topology.primary.crash();
    expect(finishedBefore).toBeLessThan(40); // the failover happens with jobs queued and in flight
    await progressTo('a replica promoted', 1, async () => ((await topology.currentPrimary()).port !== before.port ? 1 : 0));
    expect(await settled(s, ids)).toEqual({ done: 36, failed: 4 });
    expect(await w.stop()).toBe(0);
    await check(s, 40);
  });
});
