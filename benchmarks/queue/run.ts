/**
 * The queue's Redis cost and throughput, side by side in one run:
 *
 * 1. Redis CPU per full job cycle (enqueue → claim → complete → result read), the
 *    queue as it was before this benchmark existed (its code read from git at the
 *    commit below) against the queue now, on the same primary + replica, in
 *    alternating rounds. Two figures: command time from `INFO commandstats` (the
 *    top-level commands: scripts and the commands the client sends itself; commands a
 *    script runs are counted inside the script's time, so they are left out), and the
 *    primary's main-thread CPU from `INFO cpu` (which adds reading and writing sockets).
 * 2. Full-cycle throughput with no-op workers, and p99 enqueue-to-acknowledge latency,
 *    with `appendfsync` always / everysec / no: the cost of durability.
 * 3. Full-cycle throughput on one shard (one primary + replica) and on two shards (a
 *    Redis Cluster of two primaries with a replica each), p99 enqueue-to-acknowledge.
 * 4. Failure scenarios: five partition/pause cycles (network namespaces; needs root) and
 *    a power cut of every Redis process: acknowledged jobs lost or completed twice.
 *
 *   npm run bench:queue              (about 3 minutes)
 *   npm run bench:queue -- --quick   (one round, shorter runs)
 *
 * Results: benchmarks/results/queue.json and queue.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type JobQueue, RedisQueue } from '@ballast/app-queue';
import { percentile, runCycles, runPartitionScenario, runPowerCutScenario } from '@ballast/app-queue/testing';
import { startRedisCluster } from '@ballast/test/cluster';
import { netnsUnavailable } from '@ballast/test/netns';
import { command, type RedisPersistence, startRedisTopology } from '@ballast/test/redis';
import { median } from '../lib/measure.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';

/** The last commit before this benchmark: the queue with four scripts, two WAITs and two publishes per job. */
const BASELINE_COMMIT = 'd7f93a4';
const quick = process.argv.includes('--quick');
const here = dirname(fileURLToPath(import.meta.url));
const loadBefore = loadavg()[0] ?? 0;

type QueueMaker = (connection: string, prefix: string) => JobQueue;

interface Contender {
  name: string;
  make: QueueMaker;
  /** Commands only its scripts run (their time is inside the script's). */
  inner: Set<string>;
}

async function baseline(): Promise<QueueMaker | undefined> {
  const dir = join(here, '.baseline', BASELINE_COMMIT);
  try {
    mkdirSync(dir, { recursive: true });
    for (const file of ['redis.ts', 'options.ts', 'types.ts']) {
      const text = execFileSync('git', ['show', `${BASELINE_COMMIT}:apps/queue/src/${file}`], { cwd: here, encoding: 'utf8' });
      writeFileSync(join(dir, file), text);
    }
  } catch (error) {
    console.log(
      `(the baseline queue could not be read from git at ${BASELINE_COMMIT}: ${String(error)}; measuring the current queue only)`,
    );
    return undefined;
  }
  const module = (await import(join(dir, 'redis.ts'))) as { RedisQueue: new (options: object) => JobQueue };
  return (connection, prefix) => new module.RedisQueue({ connection, prefix, minReplicas: 1, pollMs: 1000 });
}

/** Per-command `calls` and `usec` from `INFO commandstats`, and the main thread's CPU seconds. */
async function redisStats(port: number): Promise<{ commands: Map<string, { calls: number; usec: number }>; cpuS: number }> {
  const commands = new Map<string, { calls: number; usec: number }>();
  for (const line of (await command(port, ['INFO', 'commandstats'])).split('\n')) {
    const m = line.match(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/);
    if (m) commands.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  const cpu = await command(port, ['INFO', 'cpu']);
  const read = (name: string): number => Number(cpu.match(new RegExp(`${name}:([\\d.]+)`))?.[1] ?? 0);
  return { commands, cpuS: read('used_cpu_sys_main_thread') + read('used_cpu_user_main_thread') };
}

interface CpuRound {
  contender: string;
  jobs: number;
  commandUsPerJob: number;
  cpuUsPerJob: number;
  callsPerJob: number;
  breakdown: Record<string, number>;
}

async function cpuRound(contender: Contender, port: number, url: string, round: number, jobs: number): Promise<CpuRound> {
  const queue = contender.make(url, `${contender.name}-${round}:`);
  // Warm up (scripts loaded, connections open), then measure from a reset.
  await runCycles(queue, queue, { producers: 8, consumers: 4, jobs: 200, idPrefix: 'w' });
  await command(port, ['CONFIG', 'RESETSTAT']);
  const before = await redisStats(port);
  const report = await runCycles(queue, queue, { producers: 32, consumers: 4, jobs });
  const after = await redisStats(port);
  await queue.close();
  let usec = 0;
  let calls = 0;
  const breakdown: Record<string, number> = {};
  for (const [name, stat] of after.commands) {
    if (contender.inner.has(name)) continue;
    usec += stat.usec;
    calls += stat.calls;
    breakdown[name] = stat.usec / report.acknowledged;
  }
  return {
    contender: contender.name,
    jobs: report.acknowledged,
    commandUsPerJob: usec / report.acknowledged,
    cpuUsPerJob: ((after.cpuS - before.cpuS) * 1e6) / report.acknowledged,
    callsPerJob: calls / report.acknowledged,
    breakdown,
  };
}

async function cpuComparison(): Promise<{ rounds: CpuRound[]; rows: Row[] }> {
  const contenders: Contender[] = [];
  const old = await baseline();
  if (old) {
    contenders.push({
      name: 'before',
      make: old,
      inner: new Set(['hset', 'exists', 'xlen', 'pexpire', 'xadd', 'del', 'xdel', 'hget', 'hincrby', 'xack', 'publish']),
    });
  }
  contenders.push({
    name: 'now',
    make: (connection, prefix) => new RedisQueue({ connection, prefix, minReplicas: 1, member: `bench-${prefix.slice(0, -1)}` }),
    inner: new Set(['hset', 'exists', 'xlen', 'pexpire', 'xadd', 'del', 'xdel', 'hmget', 'xack', 'time', 'xpending']),
  });
  const topology = await startRedisTopology({ replicas: 1, sentinels: 0, persistence: 'everysec' });
  const rounds: CpuRound[] = [];
  try {
    const n = quick ? 1 : 3;
    for (let round = 0; round < n; round++) {
      for (const contender of round % 2 === 0 ? contenders : [...contenders].reverse()) {
        rounds.push(await cpuRound(contender, topology.primary.port, topology.primary.url, round, quick ? 1000 : 3000));
      }
    }
  } finally {
    await topology.stop();
  }
  const rows = contenders.map((c) => {
    const mine = rounds.filter((r) => r.contender === c.name);
    return {
      queue: c.name,
      'commandstats µs/job (median)': median(mine.map((r) => r.commandUsPerJob)),
      'range µs': `${fmt(Math.min(...mine.map((r) => r.commandUsPerJob)))}–${fmt(Math.max(...mine.map((r) => r.commandUsPerJob)))}`,
      'main-thread CPU µs/job (median)': median(mine.map((r) => r.cpuUsPerJob)),
      'top-level calls/job': median(mine.map((r) => r.callsPerJob)),
      'jobs/s per Redis core (commandstats)': 1e6 / median(mine.map((r) => r.commandUsPerJob)),
      'jobs/s per Redis core (CPU)': 1e6 / median(mine.map((r) => r.cpuUsPerJob)),
    };
  });
  return { rounds, rows };
}

async function durability(): Promise<Row[]> {
  const rows: Row[] = [];
  const policies: RedisPersistence[] = ['always', 'everysec', 'no'];
  const rounds = quick ? 1 : 2;
  const results = new Map<string, Array<{ rate: number; ackP50: number; ackP99: number; cycleP99: number }>>();
  for (let round = 0; round < rounds; round++) {
    for (const policy of round % 2 === 0 ? policies : [...policies].reverse()) {
      const topology = await startRedisTopology({ replicas: 1, sentinels: 0, persistence: policy });
      const queue = new RedisQueue({ connection: topology.primary.url, minReplicas: 1, member: `dur-${policy}-${round}` });
      try {
        await runCycles(queue, queue, { producers: 8, consumers: 4, jobs: 300, idPrefix: 'w' });
        const report = await runCycles(queue, queue, { producers: 64, consumers: 8, durationMs: quick ? 3000 : 6000 });
        const list = results.get(String(policy)) ?? [];
        list.push({
          rate: report.acknowledged / (report.elapsedMs / 1000),
          ackP50: percentile(report.ackMs, 0.5),
          ackP99: percentile(report.ackMs, 0.99),
          cycleP99: percentile(report.cycleMs, 0.99),
        });
        results.set(String(policy), list);
      } finally {
        await queue.close();
        await topology.stop();
      }
    }
  }
  const base = median((results.get('no') ?? []).map((r) => r.rate));
  for (const policy of policies) {
    const list = results.get(String(policy)) ?? [];
    const rate = median(list.map((r) => r.rate));
    rows.push({
      appendfsync: String(policy),
      'jobs/s (median)': rate,
      'vs no': rate / base,
      'p50 enqueue→ack ms': median(list.map((r) => r.ackP50)),
      'p99 enqueue→ack ms': median(list.map((r) => r.ackP99)),
      'p99 full cycle ms': median(list.map((r) => r.cycleP99)),
    });
  }
  return rows;
}

async function shards(): Promise<Row[]> {
  const rows: Row[] = [];
  const duration = quick ? 3000 : 6000;
  const measure = async (label: string, make: () => RedisQueue, stop: () => Promise<void>): Promise<void> => {
    const queue = make();
    try {
      await runCycles(queue, queue, { producers: 8, consumers: 4, jobs: 300, idPrefix: 'w' });
      const report = await runCycles(queue, queue, { producers: 64, consumers: 8, durationMs: duration });
      rows.push({
        setup: label,
        'jobs/s': report.acknowledged / (report.elapsedMs / 1000),
        'p50 enqueue→ack ms': percentile(report.ackMs, 0.5),
        'p99 enqueue→ack ms': percentile(report.ackMs, 0.99),
        'p99 full cycle ms': percentile(report.cycleMs, 0.99),
      });
    } finally {
      await queue.close();
      await stop();
    }
  };
  const one = await startRedisTopology({ replicas: 1, sentinels: 0, persistence: 'everysec' });
  await measure(
    '1 shard (primary + replica)',
    () => new RedisQueue({ connection: one.primary.url, minReplicas: 1, member: 'one' }),
    () => one.stop(),
  );
  const two = await startRedisCluster({ primaries: 2, replicasPerPrimary: 1, persistence: 'everysec' });
  await measure(
    '2 shards (Redis Cluster, 2 primaries + replicas)',
    () => new RedisQueue({ cluster: { nodes: two.addresses, shards: 2 }, minReplicas: 1, member: 'two' }),
    () => two.stop(),
  );
  return rows;
}

async function failures(): Promise<Row[]> {
  const rows: Row[] = [];
  const why = await netnsUnavailable();
  if (why) {
    console.log(`(partition scenario skipped: ${why})`);
    rows.push({ scenario: 'partition/pause × 5', acknowledged: null, lost: null, twice: null, note: `skipped: ${why}` });
  } else {
    const r = await runPartitionScenario({ cycles: 5 });
    rows.push({
      scenario: 'partition/pause × 5',
      acknowledged: r.acknowledged,
      lost: r.lost.length,
      twice: r.twice.length,
      note: `${r.refused} enqueues refused; primary moved ${r.cycles.map((c) => `${c.primaryBefore}→${c.primaryAfter}`).join(', ')}`,
    });
  }
  const p = await runPowerCutScenario('everysec');
  rows.push({
    scenario: 'power cut (kill -9 every process), appendfsync everysec',
    acknowledged: p.acknowledged,
    lost: p.lost.length,
    twice: p.twice.length,
    note: `${p.acknowledgedBeforeCut} acknowledged before the cut`,
  });
  return rows;
}

const started = performance.now();
console.log(`bench:queue — ${quick ? 'quick' : 'full'} run; load average ${loadBefore.toFixed(2)} at start`);
const cpu = await cpuComparison();
printTable('Redis cost per full job cycle (primary + 1 replica, WAIT 1, appendfsync everysec; 32 producers, 4 no-op consumers)', cpu.rows);
const fsync = await durability();
printTable(
  'The cost of durability: full-cycle throughput, primary + 1 replica, WAIT 1, 64 producers, 8 no-op consumers, one Node process',
  fsync,
);
const sharded = await shards();
printTable('Shards: full-cycle throughput, appendfsync everysec, WAIT 1, 64 producers, 8 no-op consumers, one Node process', sharded);
const chaos = await failures();
printTable('Failure scenarios', chaos);
const loadAfter = loadavg()[0] ?? 0;
const now = cpu.rows.find((r) => r.queue === 'now');
const usPerJob = Number(now?.['commandstats µs/job (median)']);
const cpuPerJob = Number(now?.['main-thread CPU µs/job (median)']);
const shardsFor = (us: number): number => Math.ceil((10_000 * us) / 1e6 / 0.7);
const extrapolation = {
  commandUsPerJob: usPerJob,
  cpuUsPerJob: cpuPerJob,
  jobsPerCoreCommandstats: 1e6 / usPerJob,
  jobsPerCoreCpu: 1e6 / cpuPerJob,
  shardsFor10kAt70PercentCommandstats: shardsFor(usPerJob),
  shardsFor10kAt70PercentCpu: shardsFor(cpuPerJob),
};
console.log(
  `\n10,000 jobs/s at ${fmt(cpuPerJob)} µs of primary CPU per job needs ${fmt((10_000 * cpuPerJob) / 1e6)} cores: ` +
    `${extrapolation.shardsFor10kAt70PercentCpu} shard(s) kept under 70% busy (${extrapolation.shardsFor10kAt70PercentCommandstats} by command time alone).`,
);
console.log(`load average ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}; ${((performance.now() - started) / 1000).toFixed(0)} s`);

const result = {
  machine: machine(),
  quick,
  loadAverage: { before: loadBefore, after: loadAfter },
  baseline: BASELINE_COMMIT,
  cpu,
  durability: fsync,
  extrapolation,
};
writeResult('queue.json', result);
writeResult(
  'queue.md',
  [
    '# bench:queue',
    '',
    `\`npm run bench:queue${quick ? ' -- --quick' : ''}\` — ${result.machine.cpuModel}, ${result.machine.cpus} cores, Node ${result.machine.node}, ${result.machine.date}; load average ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}.`,
    '',
    `## Redis cost per full job cycle (baseline: the queue at ${BASELINE_COMMIT})`,
    '',
    markdownTable(cpu.rows),
    '',
    '## The cost of durability',
    '',
    markdownTable(fsync),
    '',
    '## Shards',
    '',
    markdownTable(sharded),
    '',
    '## Failure scenarios',
    '',
    markdownTable(chaos),
    '',
    '## Extrapolation',
    '',
    `10,000 jobs/s × ${fmt(cpuPerJob)} µs = ${fmt((10_000 * cpuPerJob) / 1e6)} primary cores: ${extrapolation.shardsFor10kAt70PercentCpu} shard(s) at ≤ 70% busy (${extrapolation.shardsFor10kAt70PercentCommandstats} by command time alone).`,
    '',
  ].join('\n'),
);
process.exit(0);
