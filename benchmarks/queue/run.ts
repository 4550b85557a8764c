/**
 * The queue's Redis cost and throughput, side by side in one run:
 *
 * 1. Redis CPU per full job cycle (enqueue → claim → complete → result read), the
 *    queue as it was before this benchmark existed (its code read from git at the
 *    commit below) against the queue now, on the same primary + replica, in
 *    alternating rounds, under four loads: 8, 64 and 256 jobs in flight from one API
 *    server process to one worker process, and 256 spread over two of each. The load
 *    runs in separate processes (closed-loop producers and no-op consumers, as API
 *    servers and workers run; see `load.ts`), so that batching and `WAIT` group commit
 *    have something to group. The figure that matters is the primary's CPU time from
 *    /proc (user + system of the redis-server process, every thread) over the run ÷
 *    jobs; also shown: command time from `INFO commandstats` (the top-level commands:
 *    scripts and the commands clients send themselves; commands a script runs are
 *    counted inside the script's time, so they are left out), which on a busy machine
 *    also counts the time Redis was descheduled inside a long call. Wake-ups per job:
 *    the times the primary's main thread went to sleep waiting for events
 *    (`voluntary_ctxt_switches` in /proc) ÷ jobs — each one a turn of its event loop
 *    woken by a client's command or a replica's acknowledgement, which at low load is
 *    what Redis CPU per job is mostly made of. The round's log line also shows the
 *    time of the commands run inside the scripts.
 * 2. Full-cycle throughput with no-op workers, and p99 enqueue-to-acknowledge latency,
 *    with `appendfsync` always / everysec / no: the cost of durability.
 * 3. Full-cycle throughput on one shard (one primary + replica) and on two shards (a
 *    Redis Cluster of two primaries with a replica each), p99 enqueue-to-acknowledge.
 * 4. Failure scenarios: five partition/pause cycles (network namespaces; needs root) and
 *    a power cut of every Redis process: acknowledged jobs lost or completed twice.
 *
 *   npm run bench:queue              (about 10 minutes)
 *   npm run bench:queue -- --quick   (one round, fewer jobs)
 *   npm run bench:queue -- --only=cost,shards   (some sections; no results file written)
 *   npm run bench:queue -- --compare=<commit>   (also measures the queue at that commit)
 *   npm run bench:queue -- --only=cost --loads=8 --no-baseline   (one load, the queue now only)
 *
 * Results: benchmarks/results/queue.json and queue.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { percentile, runPartitionScenario, runPowerCutScenario } from '@ballast/app-queue/testing';
import { startRedisCluster } from '@ballast/test/cluster';
import { netnsUnavailable } from '@ballast/test/netns';
import { command, type RedisPersistence, type RedisProcess, startRedisTopology } from '@ballast/test/redis';
import { publishFigures } from '../lib/figures.ts';
import { median } from '../lib/measure.ts';
import { fmt, machine, printTable, type Row, writeResult } from '../lib/report.ts';
import figures, { PROC, type QueueResults, type Shape } from './figures.ts';
import { type LoadOptions, type LoadReport, runLoad } from './load-runner.ts';

/** The last commit before this benchmark: the queue with four scripts, two WAITs and two publishes per job. */
const BASELINE_COMMIT = 'd7f93a4';
const quick = process.argv.includes('--quick');
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
/** Another version of the queue to measure beside the others (`--compare=<commit>`). */
const compare = process.argv.find((a) => a.startsWith('--compare='))?.slice('--compare='.length);
/** Cost loads to run, by jobs in flight (`--loads=8,64`); every load without it. */
const loads = process.argv
  .find((a) => a.startsWith('--loads='))
  ?.slice('--loads='.length)
  .split(',')
  .map(Number);
const noBaseline = process.argv.includes('--no-baseline');
const runs = (section: 'cost' | 'durability' | 'shards' | 'failures'): boolean => !only || only.includes(section);
const here = dirname(fileURLToPath(import.meta.url));
const loadBefore = loadavg()[0] ?? 0;

/** An API server and a worker, 8 jobs in flight: little to batch (about two jobs per call). */
const tiny: Shape = { name: '8 in flight', producerProcesses: 1, producersPerProcess: 8, consumerProcesses: 1, consumersPerProcess: 2 };
/** An API server and a worker, 64 jobs in flight. */
const light: Shape = { name: '64 in flight', producerProcesses: 1, producersPerProcess: 64, consumerProcesses: 1, consumersPerProcess: 16 };
/** An API server and a worker, 256 jobs in flight. */
const heavy: Shape = {
  name: '256 in flight',
  producerProcesses: 1,
  producersPerProcess: 256,
  consumerProcesses: 1,
  consumersPerProcess: 64,
};
/** The same load spread over two API servers and two workers: fewer jobs per process per round trip. */
const spread: Shape = {
  name: '256 in flight, 2 + 2 processes',
  producerProcesses: 2,
  producersPerProcess: 128,
  consumerProcesses: 2,
  consumersPerProcess: 32,
};
const shapes = [tiny, light, heavy, spread].filter((s) => !loads || loads.includes(s.producerProcesses * s.producersPerProcess));
/** The load of the durability and shard sections. */
const throughputShape = heavy;

interface Contender {
  name: string;
  /** Module exporting its `RedisQueue`; undefined for the queue now. */
  module: string | undefined;
  /** Commands only its scripts run (their time is inside the script's). */
  inner: Set<string>;
}

/** Writes the baseline queue's sources out of git; undefined when git cannot read them. */
function baseline(): string | undefined {
  const dir = join(here, '.baseline', BASELINE_COMMIT);
  try {
    mkdirSync(dir, { recursive: true });
    for (const file of ['redis.ts', 'options.ts', 'types.ts']) {
      const text = execFileSync('git', ['show', `${BASELINE_COMMIT}:apps/queue/src/${file}`], { cwd: here, encoding: 'utf8' });
      writeFileSync(join(dir, file), text);
    }
    return join(dir, 'redis.ts');
  } catch (error) {
    console.log(
      `(the baseline queue could not be read from git at ${BASELINE_COMMIT}: ${String(error)}; measuring the current queue only)`,
    );
    return undefined;
  }
}

/** Writes every source file of the queue at `commit` out of git; the path of its `redis.ts`, or undefined. */
function queueAt(commit: string): string | undefined {
  const dir = join(here, '.baseline', commit);
  try {
    const files = execFileSync('git', ['ls-tree', '-r', '--name-only', '--full-tree', commit, 'apps/queue/src/'], {
      cwd: here,
      encoding: 'utf8',
    })
      .split('\n')
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    for (const file of files) {
      const target = join(dir, file.slice('apps/queue/src/'.length));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, execFileSync('git', ['show', `${commit}:${file}`], { cwd: here, encoding: 'utf8' }));
    }
    if (files.length === 0) console.log(`(git has no apps/queue/src at ${commit}; not measured)`);
    return files.length > 0 ? join(dir, 'redis.ts') : undefined;
  } catch (error) {
    console.log(`(the queue could not be read from git at ${commit}: ${String(error)})`);
    return undefined;
  }
}

/** CPU seconds (user + system, every thread) a process has used, from /proc. */
function processCpuS(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Times the main thread of a process has gone to sleep (waiting for events), from /proc. */
function wakeups(pid: number): number {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return Number(status.match(/^voluntary_ctxt_switches:\s*(\d+)/m)?.[1] ?? 0);
}

/** Per-command `calls` and `usec` from `INFO commandstats`, and the main thread's CPU seconds. */
async function redisStats(port: number): Promise<{ commands: Map<string, { calls: number; usec: number }>; mainS: number }> {
  const commands = new Map<string, { calls: number; usec: number }>();
  for (const line of (await command(port, ['INFO', 'commandstats'])).split('\n')) {
    const m = line.match(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/);
    if (m) commands.set(m[1] as string, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  const cpu = await command(port, ['INFO', 'cpu']);
  const read = (name: string): number => Number(cpu.match(new RegExp(`${name}:([\\d.]+)`))?.[1] ?? 0);
  return { commands, mainS: read('used_cpu_sys_main_thread') + read('used_cpu_user_main_thread') };
}

/** Runs `load` on the given Redis processes and measures their CPU over it. */
async function measured(
  processes: readonly RedisProcess[],
  load: Omit<LoadOptions, 'before'>,
): Promise<{ report: LoadReport; cpuS: number[]; sleeps: number[] }> {
  let before: number[] = [];
  let sleepsBefore: number[] = [];
  const report = await runLoad({
    ...load,
    before: async () => {
      await Promise.all(processes.map((p) => command(p.port, ['CONFIG', 'RESETSTAT'])));
      before = processes.map((p) => processCpuS(p.pid));
      sleepsBefore = processes.map((p) => wakeups(p.pid));
    },
  });
  return {
    report,
    cpuS: processes.map((p, i) => processCpuS(p.pid) - (before[i] ?? 0)),
    sleeps: processes.map((p, i) => wakeups(p.pid) - (sleepsBefore[i] ?? 0)),
  };
}

const loadOf = (shape: Shape): Omit<LoadOptions, 'options' | 'jobs' | 'idPrefix'> => ({
  producerProcesses: shape.producerProcesses,
  producersPerProcess: shape.producersPerProcess,
  consumerProcesses: shape.consumerProcesses,
  consumersPerProcess: shape.consumersPerProcess,
});

interface CostRound {
  contender: string;
  shape: string;
  jobs: number;
  procUsPerJob: number;
  /** Times the primary's main thread woke up (from waiting for events) per job. */
  wakeupsPerJob: number;
  replicaProcUsPerJob: number;
  mainThreadUsPerJob: number;
  commandUsPerJob: number;
  callsPerJob: number;
  scriptCallsPerJob: number;
  waitsPerJob: number;
  jobsPerSecond: number;
  nodeUsPerJob: number;
  ackP99Ms: number;
  /** Top-level calls per job, by command. */
  breakdown: Record<string, number>;
  /** Command time per job (commandstats µs ÷ jobs), by command. */
  breakdownUs: Record<string, number>;
  /** Time per job of the commands run inside scripts (part of the scripts' time), by command. */
  innerUs: Record<string, number>;
}

async function costRound(
  contender: Contender,
  topology: { primary: RedisProcess; replicas: readonly RedisProcess[] },
  shape: Shape,
  tag: string,
  jobs: number,
): Promise<CostRound> {
  const { primary } = topology;
  const replica = topology.replicas[0] as RedisProcess;
  const start = await redisStats(primary.port);
  const { report, cpuS, sleeps } = await measured([primary, replica], {
    ...loadOf(shape),
    ...(contender.module ? { module: contender.module } : {}),
    options: { connection: primary.url, minReplicas: 1, prefix: `${tag}:`, pollMs: 1000 },
    jobs,
    idPrefix: tag,
  });
  const after = await redisStats(primary.port);
  const n = report.acknowledged;
  let usec = 0;
  let calls = 0;
  const breakdown: Record<string, number> = {};
  const breakdownUs: Record<string, number> = {};
  const inner: Record<string, number> = {};
  for (const [name, stat] of after.commands) {
    if (contender.inner.has(name)) inner[name] = stat.usec / n;
    if (contender.inner.has(name) || name.startsWith('config') || name === 'info') continue;
    // XREADGROUP is both a consumer's own read and, with prefetch, a command inside the
    // FINISH script (whose time is the script's): only the consumers' own count here,
    // their time in proportion.
    const own = name === 'xreadgroup' ? Math.max(0, stat.calls - report.scriptReads) : stat.calls;
    const ownUs = stat.calls > 0 ? (stat.usec * own) / stat.calls : 0;
    usec += ownUs;
    calls += own;
    breakdown[name] = own / n;
    breakdownUs[name] = ownUs / n;
  }
  if (report.scriptReads > 0) breakdown['xreadgroup in FINISH'] = report.scriptReads / n;
  const callsOf = (name: string): number => after.commands.get(name)?.calls ?? 0;
  return {
    contender: contender.name,
    shape: shape.name,
    jobs: n,
    procUsPerJob: ((cpuS[0] ?? 0) * 1e6) / n,
    wakeupsPerJob: (sleeps[0] ?? 0) / n,
    replicaProcUsPerJob: ((cpuS[1] ?? 0) * 1e6) / n,
    // RESETSTAT does not reset the CPU figures: the difference over the run.
    mainThreadUsPerJob: ((after.mainS - start.mainS) * 1e6) / n,
    commandUsPerJob: usec / n,
    callsPerJob: calls / n,
    scriptCallsPerJob: (callsOf('evalsha') + callsOf('eval')) / n,
    waitsPerJob: callsOf('wait') / n,
    jobsPerSecond: n / (report.elapsedMs / 1000),
    nodeUsPerJob: report.nodeCpuUs / n,
    ackP99Ms: percentile(report.ackMs, 0.99),
    breakdown,
    breakdownUs,
    innerUs: inner,
  };
}

async function costComparison(): Promise<{ rounds: CostRound[]; rows: Row[] }> {
  const contenders: Contender[] = [];
  const old = noBaseline ? undefined : baseline();
  if (old) {
    contenders.push({
      name: 'before',
      module: old,
      inner: new Set(['hset', 'exists', 'xlen', 'pexpire', 'xadd', 'del', 'xdel', 'hget', 'hincrby', 'xack', 'publish']),
    });
  }
  const other = compare ? queueAt(compare) : undefined;
  if (compare && other) {
    contenders.push({
      name: compare,
      module: other,
      inner: new Set(['get', 'set', 'exists', 'xlen', 'xadd', 'del', 'xdel', 'hmget', 'hset', 'xack', 'time', 'xpending']),
    });
  }
  // GET is counted as inner: the FINISH script runs one per job; a producer reads a
  // result itself (GET) only when it is larger than the notice carries, which no-op
  // results never are, or when a notice was missed (the poll). On one primary the FINISH
  // script pushes the notices (RPUSH, PEXPIRE).
  contenders.push({
    name: 'now',
    module: undefined,
    inner: new Set([
      'get',
      'set',
      'exists',
      'xlen',
      'xadd',
      'del',
      'xdel',
      'hmget',
      'hset',
      'xack',
      'time',
      'xpending',
      'rpush',
      'pexpire',
    ]),
  });
  const topology = await startRedisTopology({ replicas: 1, sentinels: 0, persistence: 'everysec' });
  const rounds: CostRound[] = [];
  try {
    const n = quick ? 1 : 3;
    for (let round = 0; round < n; round++) {
      for (const shape of shapes) {
        for (const contender of round % 2 === 0 ? contenders : [...contenders].reverse()) {
          const tag = `${contender.name}-${shape.producersPerProcess}-${round}`;
          const r = await costRound(contender, topology, shape, tag, quick ? 2000 : 6000);
          console.log(
            `  ${contender.name}, ${shape.name}, round ${round + 1}: ${fmt(r.procUsPerJob)} µs/job of primary CPU, ${fmt(r.wakeupsPerJob, 2)} wake-ups/job, ${fmt(r.jobsPerSecond)} jobs/s (load ${fmt(loadavg()[0] ?? 0)})`,
          );
          const top = Object.entries(r.breakdown)
            .filter(([, calls]) => calls >= 0.01)
            .map(([name, calls]) => `${name} ${fmt(calls, 2)}×/${fmt(r.breakdownUs[name] ?? 0)} µs`)
            .join(', ');
          const inside = Object.entries(r.innerUs)
            .filter(([, us]) => us >= 0.1)
            .map(([name, us]) => `${name} ${fmt(us)} µs`)
            .join(', ');
          console.log(`    per job: ${top}; replica ${fmt(r.replicaProcUsPerJob)} µs; inside scripts: ${inside}`);
          rounds.push(r);
        }
      }
    }
  } finally {
    await topology.stop();
  }
  const rows: Row[] = [];
  for (const shape of shapes) {
    for (const c of contenders) {
      const mine = rounds.filter((r) => r.contender === c.name && r.shape === shape.name);
      const med = (pick: (r: CostRound) => number): number => median(mine.map(pick));
      const proc = mine.map((r) => r.procUsPerJob);
      rows.push({
        load: shape.name,
        queue: c.name,
        [PROC]: med((r) => r.procUsPerJob),
        'range µs': `${fmt(Math.min(...proc))}–${fmt(Math.max(...proc))}`,
        'commandstats µs/job': med((r) => r.commandUsPerJob),
        'main-thread CPU µs/job': med((r) => r.mainThreadUsPerJob),
        'top-level calls/job': med((r) => r.callsPerJob),
        'wake-ups/job': med((r) => r.wakeupsPerJob),
        'script calls/job': med((r) => r.scriptCallsPerJob),
        'WAITs/job': med((r) => r.waitsPerJob),
        'replica CPU µs/job': med((r) => r.replicaProcUsPerJob),
        'jobs/s': med((r) => r.jobsPerSecond),
        'load processes CPU µs/job': med((r) => r.nodeUsPerJob),
        'p99 enqueue→ack ms': med((r) => r.ackP99Ms),
      });
    }
  }
  return { rounds, rows };
}

/** Full cycles through the queue now on `processes` (the data servers), with the throughput shape. */
async function throughput(processes: readonly RedisProcess[], options: Record<string, unknown>, tag: string) {
  const { report, cpuS } = await measured(processes, {
    ...loadOf(throughputShape),
    options: { ...options, minReplicas: 1, prefix: `${tag}:` },
    jobs: quick ? 2000 : 6000,
    idPrefix: tag,
  });
  return {
    rate: report.acknowledged / (report.elapsedMs / 1000),
    ackP50: percentile(report.ackMs, 0.5),
    ackP99: percentile(report.ackMs, 0.99),
    cycleP99: percentile(report.cycleMs, 0.99),
    cpuUsPerJob: (cpuS.reduce((a, b) => a + b, 0) * 1e6) / report.acknowledged,
  };
}

async function durability(): Promise<Row[]> {
  const rows: Row[] = [];
  const policies: RedisPersistence[] = ['always', 'everysec', 'no'];
  const rounds = quick ? 1 : 2;
  const results = new Map<string, Array<Awaited<ReturnType<typeof throughput>>>>();
  for (let round = 0; round < rounds; round++) {
    for (const policy of round % 2 === 0 ? policies : [...policies].reverse()) {
      const topology = await startRedisTopology({ replicas: 1, sentinels: 0, persistence: policy });
      try {
        const r = await throughput(
          [topology.primary, ...topology.replicas],
          { connection: topology.primary.url },
          `dur-${policy}-${round}`,
        );
        results.set(String(policy), [...(results.get(String(policy)) ?? []), r]);
      } finally {
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
  const add = (setup: string, r: Awaited<ReturnType<typeof throughput>>): void => {
    rows.push({
      setup,
      'jobs/s': r.rate,
      'p50 enqueue→ack ms': r.ackP50,
      'p99 enqueue→ack ms': r.ackP99,
      'p99 full cycle ms': r.cycleP99,
      'CPU of every Redis process µs/job': r.cpuUsPerJob,
    });
  };
  const one = await startRedisTopology({ replicas: 1, sentinels: 0, persistence: 'everysec' });
  try {
    add('1 shard (primary + replica)', await throughput([one.primary, ...one.replicas], { connection: one.primary.url }, 'one'));
  } finally {
    await one.stop();
  }
  const two = await startRedisCluster({ primaries: 2, replicasPerPrimary: 1, persistence: 'everysec' });
  try {
    add(
      '2 shards (Redis Cluster, 2 primaries + replicas)',
      await throughput(two.nodes, { cluster: { nodes: two.addresses, shards: 2 } }, 'two'),
    );
  } finally {
    await two.stop();
  }
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
const cost = runs('cost') ? await costComparison() : { rounds: [], rows: [] };
printTable(
  'Redis cost per full job cycle (primary + 1 replica, WAIT 1, appendfsync everysec; producer and no-op consumer processes)',
  cost.rows,
);
const fsync = runs('durability') ? await durability() : [];
printTable(`The cost of durability: full-cycle throughput, primary + 1 replica, WAIT 1, ${throughputShape.name}`, fsync);
const sharded = runs('shards') ? await shards() : [];
printTable(`Shards: full-cycle throughput, appendfsync everysec, WAIT 1, ${throughputShape.name}`, sharded);
const chaos = runs('failures') ? await failures() : [];
printTable('Failure scenarios', chaos);
const loadAfter = loadavg()[0] ?? 0;
const result: QueueResults = {
  machine: machine(),
  quick,
  loadAverage: { before: loadBefore, after: loadAfter },
  baseline: BASELINE_COMMIT,
  compare: compare ?? null,
  rounds: quick ? 1 : 3,
  shapes,
  extrapolateFrom: heavy.name,
  cost: { rows: cost.rows },
  durability: fsync,
  shards: sharded,
  failures: chaos,
};
if (cost.rows.length > 0) {
  const fragments = figures(result);
  console.log(`\n${fragments.goal}\n${fragments.extrapolation}`);
}
console.log(`load average ${loadBefore.toFixed(2)} → ${loadAfter.toFixed(2)}; ${((performance.now() - started) / 1000).toFixed(0)} s`);
if (only || loads || noBaseline) process.exit(0);
writeResult('queue.json', { ...result, cost });
writeResult('queue.md', figures(result).report as string);
await publishFigures('queue');
process.exit(0);
