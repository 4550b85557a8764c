/**
 * Balancing-algorithm comparison.
 *
 *   npm run bench:balancing              simulation: every scenario × 50/80/95% × strategy (a few minutes)
 *   npm run bench:balancing -- --live    live traffic: proxy cost, then Ballast's proxies, nginx, HAProxy (about 25 minutes)
 *
 * Options: --seed=N (simulation seed, default 42), --repeats=N (live runs per configuration,
 * default 5), --only=<scenario,...|proxy-cost> (a quick look; results are written only for
 * full runs), --report (rebuild the report from the JSON without running anything).
 * Each command replaces only its own half of benchmarks/results/balancing.json (the other
 * half is read back and kept), then rewrites benchmarks/results/balancing.md and the charts
 * in benchmarks/results/balancing/ from both halves.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { machine, printTable, resultsDir, writeResult } from '../lib/report.ts';
import { runLive } from './live/run-live.ts';
import { buildReport, goals } from './report/markdown.ts';
import { type BalancingResults, replacePart } from './results.ts';
import { BALANCER_OPTIONS, CLIENT_TIMEOUT_MS, runSimulation, UTILISATIONS } from './sim/run-sim.ts';
import { strategies } from './strategies.ts';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const a = args.find((x) => x === `--${name}` || x.startsWith(`--${name}=`));
  return a === undefined ? undefined : (a.split('=')[1] ?? '');
};
const usage = 'usage: run.ts [--live] [--seed=N] [--repeats=N] [--only=scenario,...] [--report]';
for (const a of args) {
  if (!/^--(live|report|seed=\d+|repeats=[1-9]\d*|only=[\w,-]+)$/.test(a)) {
    console.error(`unknown or malformed argument ${JSON.stringify(a)}\n${usage}`);
    process.exit(2);
  }
}
const live = flag('live') !== undefined;
const seed = Number(flag('seed') ?? 42);
const only = flag('only')?.split(',').filter(Boolean);
const repeats = Number(flag('repeats') ?? 5);

const jsonPath = join(resultsDir, 'balancing.json');
const previous: BalancingResults = existsSync(jsonPath)
  ? (JSON.parse(readFileSync(jsonPath, 'utf8')) as BalancingResults)
  : { simulation: null, live: null };

let results: BalancingResults;
if (flag('report') !== undefined) {
  results = previous;
} else if (live) {
  console.log(`Live traffic on 127.0.0.1 (load average ${loadavg()[0]!.toFixed(2)}): proxy cost, then Ballast's proxy, nginx, HAProxy`);
  const liveResults = await runLive(strategies, { only, repeats, log: console.log });
  results = replacePart(previous, { live: liveResults });
} else {
  const settings = { seed, durationMs: 20_000, warmupMs: 2_000, clientTimeoutMs: CLIENT_TIMEOUT_MS };
  console.log(`Simulation: seed ${seed}, ${settings.durationMs / 1000} s simulated per run, ${strategies.length} strategies + oracle`);
  const started = performance.now();
  const scenarios = runSimulation(strategies, settings, console.log, only ? (s) => only.includes(s.name) : undefined);
  if (scenarios.length === 0) console.error(`no scenario matched --only=${only?.join(',')}`);
  const wallSeconds = (performance.now() - started) / 1000;
  console.log(`Simulation done in ${wallSeconds.toFixed(1)} s`);
  results = replacePart(previous, {
    simulation: {
      command: 'npm run bench:balancing',
      machine: machine(),
      settings: { ...settings, utilisations: UTILISATIONS, balancerOptions: BALANCER_OPTIONS },
      strategies: strategies.map((s) => ({ id: s.id, label: s.label })),
      wallSeconds,
      scenarios,
    },
  });
  for (const sc of scenarios) {
    printTable(
      `${sc.title} (80%)`,
      sc.runs
        .filter((r) => r.utilisation === 0.8)
        .map((r) => ({ strategy: r.strategy, p50: r.latency.p50, p99: r.latency.p99, p999: r.latency.p999, errors: r.errorRate })),
    );
  }
}

// The JSON first: a report that fails to build must not lose a run's figures.
if (!only && flag('report') === undefined) writeResult('balancing.json', results);

printTable(
  'Goals',
  goals(results).map((g) => ({ goal: g.goal, measured: g.measured, met: g.met === null ? 'reported' : g.met ? 'yes' : 'NO' })),
);

if (only) {
  console.log('\n--only given: results not written.');
} else {
  const { markdown, charts } = buildReport(results);
  const chartDir = join(resultsDir, 'balancing');
  mkdirSync(chartDir, { recursive: true });
  for (const file of readdirSync(chartDir)) if (file.endsWith('.svg') && !charts.has(file)) rmSync(join(chartDir, file));
  for (const [file, svg] of charts) writeResult(join('balancing', file), svg);
  console.log(`\nWrote ${writeResult('balancing.md', markdown)} and ${charts.size} charts`);
}
