/**
 * `npm run bench:billing [-- --quick]`: usage metering and billing figures, on this machine.
 *
 * 1. Shipping: records appended to a usage log (fsync'd, group commit) and shipped to a
 *    real PostgreSQL by one shipper: records per second per process.
 * 2. Delay: records appended at a steady rate while the shipper runs at its defaults; the
 *    delay from job finish to visible in the store (the store's own receive time).
 * 3. Billing throughput: generated records in a zstd Parquet partition, priced and summed
 *    by the billing SQL in DuckDB (map + reduce): records per minute; and the whole
 *    billing job (claim, archive from PostgreSQL, verify, price, purge) on fewer records.
 * 4. Archive bytes per record.
 * 5. CPU conservation: the CPU metered over all jobs of a worker process against that
 *    process's own CPU time over the run, separate-process mode (apps/worker/src/main.ts on
 *    Redis) and embedded mode (the whole system in one process).
 *
 * Results: benchmarks/results/billing.json and billing.md.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { RedisQueue } from '@ballast/app-queue';
import { Shipper, toRecord, UsageLog, UsageStore } from '@ballast/app-usage';
import { ColdStorage, invoiceLinesSql, pricedSql, runBilling } from '@ballast/app-usage/billing';
import { sampleJpeg } from '@ballast/app-worker';
import { startPostgres } from '@ballast/test/postgres';
import { startRedis } from '@ballast/test/redis';
import { DuckDBInstance } from '@duckdb/node-api';
import { publishFigures } from '../lib/figures.ts';
import { machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';

const quick = process.argv.includes('--quick');
const readers = new WeakMap<ChildProcess, AsyncIterator<string>>();
// Children die with the benchmark, whatever ends it.
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
const repo = fileURLToPath(new URL('../../', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'ballast-bench-billing-'));
const loadBefore = loadavg()[0] as number;
const pg = await startPostgres();
const results: Record<string, unknown> = { machine: machine(), quick, loadAverage1mBefore: loadBefore };
const rows: Row[] = [];
const job = (n: number, finishedAt: number) => ({
  jobId: `bench-${n}-${finishedAt}`,
  tenant: `tenant-${n % 50}`,
  worker: 'worker-bench-0',
  attempt: 1,
  outcome: 'done' as const,
  cpuMs: 15 + (n % 17),
  wallMs: 18 + (n % 13),
  bytesIn: 250_000 + (n % 9973),
  bytesOut: 30_000 + (n % 7919),
  pixelsIn: 1_920_000,
  pixelsOut: 480_000,
  formatIn: 'jpeg',
  format: 'webp',
  enqueuedAt: finishedAt - 40,
  startedAt: finishedAt - 20,
  finishedAt,
  requestId: `req-${n}`,
});

try {
  // 1. Shipping throughput.
  {
    const store = await UsageStore.open({ database: await pg.createDatabase('ship') });
    const dir = join(root, 'ship');
    const log = await UsageLog.open({ dir });
    const n = quick ? 20_000 : 100_000;
    const now = Date.now();
    for (let i = 0; i < n; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, k) => log.append(job(i + k, now))));
    const shipper = await Shipper.open({ dir, store });
    const started = performance.now();
    const cpu = process.cpuUsage();
    await shipper.drain();
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    results.shipping = { records: n, seconds, recordsPerSecond: n / seconds, shipperCpuSeconds: (used.user + used.system) / 1e6 };
    rows.push({ figure: 'records shipped per second, one shipper process (batches of 1,000)', value: n / seconds });
    await shipper.close();
    await log.close();
    await store.close();
  }

  // 2. Delay from job finish to visible in the store.
  {
    const store = await UsageStore.open({ database: await pg.createDatabase('delay') });
    const dir = join(root, 'delay');
    const log = await UsageLog.open({ dir });
    const shipper = (await Shipper.open({ dir, store })).start(); // defaults: 1 s pause when idle
    const rate = 200;
    const seconds = quick ? 5 : 20;
    for (let i = 0; i < rate * seconds; i++) {
      await log.append(job(i, Date.now()));
      await new Promise((r) => setTimeout(r, 1000 / rate));
    }
    await shipper.drain();
    const delays = await store.sql.query<{ p50: number; p99: number; max: number }>(
      'SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY received_at - finished_at) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY received_at - finished_at) AS p99, max(received_at - finished_at) AS max FROM usage_records',
    );
    const d = delays[0] as { p50: number; p99: number; max: number };
    results.delay = { recordsPerSecond: rate, seconds, p50Ms: Number(d.p50), p99Ms: Number(d.p99), maxMs: Number(d.max) };
    rows.push({ figure: `delay job finish → in the store, p50 (${rate} records/s, shipper defaults), ms`, value: Number(d.p50) });
    rows.push({ figure: 'delay job finish → in the store, p99, ms', value: Number(d.p99) });
    await shipper.close();
    await log.close();
    await store.close();
  }

  // 3 + 4. Billing throughput on generated records, archive bytes per record.
  {
    const n = quick ? 2_000_000 : 10_000_000;
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    const part = join(root, 'generated.parquet');
    await c.run(`COPY (SELECT md5(i::VARCHAR) AS record_id, 'job-' || i AS job_id, 'tenant-' || (i % 1000) AS tenant,
        CASE WHEN i % 50 = 0 THEN 'failed' ELSE 'done' END AS outcome, 15000 + (i % 20000) AS cpu_us, 250000 + (i % 9973) AS bytes_in,
        30000 + (i % 7919) AS bytes_out, '2026-10' AS usage_month, '2026-10-' || lpad((1 + i % 28)::VARCHAR, 2, '0') AS usage_day,
        '2026-10-01T' || lpad((i % 24)::VARCHAR, 2, '0') AS usage_hour, '2026-10' AS billing_period
      FROM range(${n}) t(i)) TO '${part}' (FORMAT parquet, COMPRESSION zstd)`);
    const period = { id: '2026-10', kind: 'month' as const, startMs: 0, endMs: 0 };
    const { unitPrices, DEFAULT_PRICES } = await import('@ballast/app-usage');
    const started = performance.now();
    await c.run(`CREATE TABLE priced AS ${pricedSql(`read_parquet('${part}')`, period, unitPrices(DEFAULT_PRICES))}`);
    const lines = (await c.runAndReadAll(invoiceLinesSql('priced'))).getRows().length;
    const seconds = (performance.now() - started) / 1000;
    results.billingSql = { records: n, seconds, recordsPerMinute: (n / seconds) * 60, invoiceLines: lines };
    rows.push({
      figure: `billing SQL (map + reduce) on ${n.toLocaleString('en-US')} records, records per minute`,
      value: (n / seconds) * 60,
    });
    c.closeSync();
    db.closeSync();

    // The whole job on records in PostgreSQL: claim, archive, verify, price, purge.
    const m = quick ? 100_000 : 1_000_000;
    const store = await UsageStore.open({ database: await pg.createDatabase('billing') });
    const base = Date.UTC(2026, 9, 1);
    for (let i = 0; i < m; i += 5000)
      await store.insert(Array.from({ length: Math.min(5000, m - i) }, (_, k) => toRecord(job(i + k, base + (i + k) * 1000))));
    const cold = new ColdStorage(join(root, 'cold'));
    const jobStarted = performance.now();
    const result = await runBilling('2026-10', { store, cold, outDir: join(root, 'out'), now: () => Date.UTC(2026, 11, 1) });
    const jobSeconds = (performance.now() - jobStarted) / 1000;
    const manifest = JSON.parse(readFileSync(result.files.manifest, 'utf8'));
    const bytes = statSync(cold.path(manifest.files[0].key)).size;
    results.billingJob = {
      records: m,
      seconds: jobSeconds,
      recordsPerMinute: (m / jobSeconds) * 60,
      archiveBytes: bytes,
      archiveBytesPerRecord: bytes / m,
    };
    rows.push({
      figure: `whole billing job from PostgreSQL (${m.toLocaleString('en-US')} records), records per minute`,
      value: (m / jobSeconds) * 60,
    });
    rows.push({ figure: 'archive bytes per record (zstd Parquet, all columns)', value: bytes / m });
    await store.close();
  }

  // 5. CPU conservation.
  results.cpuSeparate = await separateProcess(quick ? 60 : 200);
  rows.push({
    figure: 'CPU conservation, separate worker process: metered / process CPU',
    value: (results.cpuSeparate as { ratio: number }).ratio,
  });
  results.cpuEmbedded = await embedded(quick ? 60 : 200);
  rows.push({
    figure: 'CPU conservation, embedded system: metered / process CPU',
    value: (results.cpuEmbedded as { ratio: number }).ratio,
  });
} finally {
  await pg.stop();
  rmSync(root, { recursive: true, force: true });
}

results.loadAverage1mAfter = loadavg()[0];
printTable('Usage metering and billing', rows);
console.log(`\n1-minute load average: ${loadBefore.toFixed(1)} before, ${(loadavg()[0] as number).toFixed(1)} after (2 shared cores)`);
writeResult('billing.json', results);
writeResult(
  'billing.md',
  `# Usage metering and billing\n\n\`npm run bench:billing${quick ? ' -- --quick' : ''}\` on ${machine().cpus} cores (${machine().cpuModel}), Node ${process.version}, ` +
    `1-minute load average ${loadBefore.toFixed(1)} before and ${(loadavg()[0] as number).toFixed(1)} after.\n\n${markdownTable(rows)}\n`,
);
await publishFigures('billing');

/** CPU seconds (user + system) of process `pid` so far, from /proc. */
function procCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in ticks of 1/100 s
}

async function separateProcess(jobs: number): Promise<Record<string, number>> {
  const redis = await startRedis();
  const database = await pg.createDatabase('cpu');
  const logRoot = join(root, 'cpu-log');
  const child = spawn(process.execPath, ['--conditions=@ballast/source', join(repo, 'apps/worker/src/main.ts')], {
    env: {
      ...process.env,
      BALLAST_REDIS_URL: redis.url,
      BALLAST_REDIS_MIN_REPLICAS: '0',
      BALLAST_WORKER_CONCURRENCY: '2',
      BALLAST_WORKER_NAME: 'cpu',
      BALLAST_USAGE_DIR: logRoot,
      BALLAST_USAGE_DATABASE: database,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  await firstLine(child);
  await new Promise((r) => setTimeout(r, 3000)); // start-up done, store open
  const queue = new RedisQueue({ connection: redis.url, minReplicas: 0 });
  const image = await sampleJpeg();
  const before = procCpuMs(child.pid as number);
  const ids: string[] = [];
  for (let i = 0; i < jobs; i++)
    ids.push(await queue.enqueue({ data: image, params: { resize: { width: 800 } }, deadlineAt: Date.now() + 600_000 }));
  for (const id of ids) await queue.wait(id);
  const after = procCpuMs(child.pid as number);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const store = await UsageStore.open({ database });
  const sum = await store.sql.query<{ cpu: string }>('SELECT sum(cpu_us)::text AS cpu FROM usage_records');
  await store.close();
  await queue.close();
  await redis.stop();
  const metered = Number(sum[0]?.cpu) / 1000;
  return { jobs, processCpuMs: after - before, meteredCpuMs: metered, ratio: metered / (after - before) };
}

async function embedded(requests: number): Promise<Record<string, number>> {
  const child = spawn(
    process.execPath,
    ['--conditions=@ballast/source', '--initial-old-space-size=128', join(repo, 'benchmarks/billing/embedded.ts')],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const { url } = JSON.parse(await firstLine(child)) as { url: string };
  const image = await sampleJpeg();
  child.stdin?.write('go\n');
  let next = 0;
  const client = async (): Promise<void> => {
    while (next < requests) {
      next++;
      const res = await fetch(`${url}/v1/resize?width=800`, { method: 'POST', body: image, headers: { 'content-type': 'image/jpeg' } });
      await res.arrayBuffer();
    }
  };
  await Promise.all([client(), client(), client(), client()]);
  child.stdin?.write('stop\n');
  const report = JSON.parse(await nextLine(child)) as { processCpuMs: number; meteredCpuMs: number };
  return { requests, ...report, ratio: report.meteredCpuMs / report.processCpuMs };
}

function nextLine(child: ChildProcess): Promise<string> {
  let it = readers.get(child);
  if (!it) {
    it = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
    readers.set(child, it);
  }
  return it.next().then((r) => String(r.value));
}
function firstLine(child: ChildProcess): Promise<string> {
  return nextLine(child);
}
