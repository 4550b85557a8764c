/**
 * The live comparison: backends as real processes on 127.0.0.1 with the simulation's
 * latency profiles, an open-loop load generator, and one balancer at a time in front —
 * Ballast's Node proxy with several strategies, nginx and HAProxy with each of their
 * equivalent algorithms — every configuration run `repeats` times, interleaved (the
 * order rotated each round), and reported as medians with confidence intervals. First,
 * the proxy-cost section (see proxy-cost.ts) measures what each proxy costs per request.
 * Bounded: a few seconds per run, everything stopped after.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { median } from '../../lib/measure.ts';
import { openLoop } from '../../lib/open-loop.ts';
import { machine } from '../../lib/report.ts';
import type { LiveResults, LiveRun, LiveSample, LiveScenarioResult } from '../results.ts';
import { seeded } from '../sim/random.ts';
import { medianInterval } from '../stats.ts';
import type { StrategyEntry } from '../strategies.ts';
import type { BackendConfig } from './backend.ts';
import { httpClient } from './client.ts';
import { ballast, bareUndici, type Contender, cProxy, nodeHttpServer, nodePeer } from './contenders.ts';
import { cpuSeconds, forkModule, type Running } from './processes.ts';
import { ensureProxies, proxyConfigs } from './proxies.ts';
import { rotate, runProxyCost, wrk } from './proxy-cost.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..');

const SETTINGS = {
  warmupMs: 1_000,
  timeoutMs: 5_000,
  utilisation: 0.8,
  concurrency: 2,
  meanMs: 80,
  arrivals: 'constant' as const,
  keys: 2_000,
  seed: 42,
  confidenceLevel: 0.95,
};

/** Ballast's strategies in the live runs: the like-for-like ones and the load-aware ones. */
export const LIVE_STRATEGIES = ['round-robin', 'random', 'least-connections', 'p2c', 'peak-ewma'];
/** The strategies `netProxy` runs with in the live scenarios: the like-for-like load-aware ones. */
export const NET_STRATEGIES = ['least-connections', 'p2c'];

interface LiveScenario {
  name: string;
  title: string;
  description: string;
  /** Mean service time per backend, ms. */
  meanMs: number[];
  watch: number | null;
  /** Length of each run, warm-up included, ms. */
  durationMs: number;
}

const BACKENDS = 10;
const scenarios: LiveScenario[] = [
  {
    name: 'homogeneous',
    title: 'Homogeneous servers',
    description: `${BACKENDS} identical backends.`,
    meanMs: Array.from({ length: BACKENDS }, () => SETTINGS.meanMs),
    watch: null,
    durationMs: 3_500,
  },
  {
    name: 'slow-server',
    title: 'One server 5× slower',
    description: `Backend s0 takes 5× longer (mean ${5 * SETTINGS.meanMs} ms); equal weights everywhere.`,
    meanMs: Array.from({ length: BACKENDS }, (_, i) => (i === 0 ? 5 : 1) * SETTINGS.meanMs),
    watch: 0,
    durationMs: 7_000,
  },
];

async function startBackends(meanMs: number[]): Promise<{ ports: number[]; running: Running[] }> {
  const started = await Promise.all(
    meanMs.map((mean, i) => {
      const config: BackendConfig = { id: `s${i}`, concurrency: SETTINGS.concurrency, meanMs: mean, seed: SETTINGS.seed };
      return forkModule<{ port: number }>(join(here, 'backend.ts'), [JSON.stringify(config)]);
    }),
  );
  return { ports: started.map((s) => s.ready.port), running: started.map((s) => s.running) };
}

/** Drops every queued request on the backends and waits for those in service to finish. */
async function resetBackends(ports: number[]): Promise<void> {
  await Promise.all(ports.map((port) => fetch(`http://127.0.0.1:${port}/__reset`).then((r) => r.text())));
  await new Promise((r) => setTimeout(r, 300));
}

function version(command: string, args: string[]): string {
  const out = spawnSync(command, args, { encoding: 'utf8' });
  const text = `${out.stdout ?? ''}${out.stderr ?? ''}`;
  return /(\d+\.\d+\.\d+)/.exec(text)?.[1] ?? 'unknown';
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function sample(
  contender: Contender,
  ports: number[],
  ratePerSec: number,
  keys: string[],
  durationMs: number,
  servers: string[],
  round: number,
): Promise<LiveSample> {
  const instance = await contender.start(ports);
  try {
    // Warm-up outside the measurement: 1 s of requests the backends answer at once, so
    // every proxy meets the measured traffic with its connections open (and a JIT proxy
    // with its hot path compiled) without queueing anything on the backends.
    wrk(instance.port, 1_000, '/__ping');
  } catch (error) {
    await instance.stop();
    throw error;
  }
  const client = httpClient(
    () => instance.port,
    (i) => keys[i % keys.length]!,
    SETTINGS.timeoutMs,
  );
  let cpuAtWarmup = Number.NaN;
  // How late the load generator's own timers fire: a gauge of how busy the machine was.
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const warmupTimer = setTimeout(() => (cpuAtWarmup = cpuSeconds(instance.pid)), SETTINGS.warmupMs);
  try {
    const result = await openLoop(client.send, {
      ratePerSec,
      durationMs,
      warmupMs: SETTINGS.warmupMs,
      arrivals: SETTINGS.arrivals,
      random: seeded(SETTINGS.seed, `live/${contender.label}`),
    });
    const cpu = cpuSeconds(instance.pid) - cpuAtWarmup;
    lag.disable();
    const summary = result.histograms.all.summary();
    const ok = result.byStatus['200']?.count ?? 0;
    const total = result.completed + result.failed;
    return {
      round,
      ratePerSec,
      sent: result.sent,
      completed: result.completed,
      errors: total - ok,
      timeouts: result.byStatus.timeout?.count ?? 0,
      errorRate: total === 0 ? 0 : (total - ok) / total,
      throughput: (ok / (durationMs - SETTINGS.warmupMs)) * 1000,
      latency: { p50: summary.p50, p90: summary.p90, p99: summary.p99, p999: summary.p999, max: summary.max },
      share: servers.map((name) => (result.completed === 0 ? 0 : (result.byServer[name] ?? 0) / result.completed)),
      cpuSeconds: cpu,
      requestsPerCpuSecond: cpu > 0 ? result.completed / cpu : Number.NaN,
      generatorLagP99Ms: lag.percentile(99) / 1e6,
    };
  } finally {
    lag.disable();
    clearTimeout(warmupTimer);
    client.close();
    await instance.stop();
  }
}

/** One configuration's figures over its samples. */
function summarise(contender: Contender, samples: LiveSample[], servers: string[]): LiveRun {
  const level = SETTINGS.confidenceLevel;
  const of = (f: (s: LiveSample) => number) => medianInterval(samples.map(f), level);
  return {
    balancer: contender.label,
    kind: contender.kind,
    strategy: contender.strategy,
    p50: of((s) => s.latency.p50),
    p99: of((s) => s.latency.p99),
    p999: of((s) => s.latency.p999),
    errorRate: of((s) => s.errorRate),
    requestsPerCpuSecond: of((s) => s.requestsPerCpuSecond),
    latency: {
      p50: median(samples.map((s) => s.latency.p50)),
      p90: median(samples.map((s) => s.latency.p90)),
      p99: median(samples.map((s) => s.latency.p99)),
      p999: median(samples.map((s) => s.latency.p999)),
      max: median(samples.map((s) => s.latency.max)),
    },
    share: servers.map((_, i) => median(samples.map((s) => s.share[i] ?? 0))),
    samples,
  };
}

/**
 * Spreads `b` evenly through `a`, so that a stretch of heavy load on the machine does not
 * fall on one group of balancers only.
 */
export function interleave<T>(a: T[], b: T[]): T[] {
  const out: T[] = [];
  const total = a.length + b.length;
  let ia = 0;
  let ib = 0;
  for (let i = 0; i < total; i++) {
    if (ib < b.length && (Math.floor(((i + 1) * b.length) / total) > ib || ia >= a.length)) out.push(b[ib++]!);
    else out.push(a[ia++]!);
  }
  return out;
}

export interface LiveOptions {
  /** Parts to run: scenario names and/or `proxy-cost` (default: all). */
  only?: string[];
  /** Runs per configuration. @default 5 */
  repeats?: number;
  log?: (line: string) => void;
}

export async function runLive(strategies: StrategyEntry[], options: LiveOptions = {}): Promise<LiveResults> {
  const log = options.log ?? (() => {});
  const repeats = options.repeats ?? 5;
  const wanted = (name: string): boolean => !options.only || options.only.includes(name);
  ensureProxies(repoRoot);
  const started = performance.now();
  const loadBefore = loadavg()[0]!;
  const entry = (id: string): StrategyEntry => {
    const e = strategies.find((s) => s.id === id);
    if (!e) throw new Error(`unknown strategy ${id}`);
    return e;
  };
  const roundRobin = proxyConfigs.find((c) => c.name === 'nginx round robin')!;
  const haproxyRoundRobin = proxyConfigs.find((c) => c.name === 'HAProxy roundrobin')!;

  let proxyCost: LiveResults['proxyCost'] = null;
  if (wanted('proxy-cost')) {
    log(`\nProxy cost: backends that answer at once; wrk closed loop, then latency at half capacity (${repeats} rounds)`);
    proxyCost = await runProxyCost(
      [
        ballast(entry('round-robin'), 'node'),
        ballast(entry('round-robin'), 'net'),
        ballast(entry('round-robin'), 'hono'),
        nodePeer('fastify-http-proxy'),
        nodePeer('http-proxy'),
        cProxy(roundRobin),
        cProxy(haproxyRoundRobin),
        bareUndici,
        nodeHttpServer,
      ],
      repeats,
      SETTINGS.confidenceLevel,
      log,
    );
  }

  const random = seeded(SETTINGS.seed, 'live/keys');
  const keys = Array.from({ length: 50_000 }, () => `k${Math.floor(random() * SETTINGS.keys)}`);
  const contenders = interleave(
    [...LIVE_STRATEGIES.map((id) => ballast(entry(id), 'node')), ...NET_STRATEGIES.map((id) => ballast(entry(id), 'net'))],
    proxyConfigs.map(cProxy),
  );
  const results: LiveScenarioResult[] = [];
  for (const scenario of scenarios) {
    if (!wanted(scenario.name)) continue;
    const servers = scenario.meanMs.map((_, i) => `s${i}`);
    const capacity = scenario.meanMs.reduce((sum, mean) => sum + (SETTINGS.concurrency * 1000) / mean, 0);
    const ratePerSec = Math.round(capacity * SETTINGS.utilisation);
    log(`\n${scenario.title}: ${ratePerSec} requests/s (${SETTINGS.utilisation * 100}% of ${Math.round(capacity)}/s), ${repeats} rounds`);
    const backends = await startBackends(scenario.meanMs);
    const samples = new Map<Contender, LiveSample[]>(contenders.map((c) => [c, []]));
    try {
      for (let round = 0; round < repeats; round++) {
        for (const contender of rotate(contenders, round)) {
          await resetBackends(backends.ports);
          try {
            const r = await sample(contender, backends.ports, ratePerSec, keys, scenario.durationMs, servers, round);
            samples.get(contender)!.push(r);
            log(
              `  ${contender.label.padEnd(34)} p50 ${r.latency.p50.toFixed(1).padStart(7)}  p99 ${r.latency.p99.toFixed(1).padStart(7)}  p99.9 ${r.latency.p999.toFixed(1).padStart(7)} ms  errors ${(r.errorRate * 100).toFixed(2)}%  ${Math.round(r.requestsPerCpuSecond)} req/CPU-s  lag ${r.generatorLagP99Ms.toFixed(0)} ms`,
            );
          } catch (error) {
            log(`  ${contender.label}: failed: ${(error as Error).message}`);
          }
        }
      }
    } finally {
      await Promise.all(backends.running.map((b) => b.stop()));
    }
    results.push({
      name: scenario.name,
      title: scenario.title,
      description: scenario.description,
      servers,
      watch: scenario.watch,
      durationMs: scenario.durationMs,
      ratePerSec,
      runs: contenders.filter((c) => samples.get(c)!.length > 0).map((c) => summarise(c, samples.get(c)!, servers)),
    });
  }
  return {
    format: 2,
    command: 'npm run bench:balancing -- --live',
    machine: machine(),
    settings: {
      repeats,
      confidenceLevel: SETTINGS.confidenceLevel,
      warmupMs: SETTINGS.warmupMs,
      timeoutMs: SETTINGS.timeoutMs,
      utilisation: SETTINGS.utilisation,
      concurrency: SETTINGS.concurrency,
      meanMs: SETTINGS.meanMs,
      arrivals: SETTINGS.arrivals,
      versions: {
        node: process.versions.node,
        nginx: version('nginx', ['-v']),
        haproxy: version('haproxy', ['-v']),
        undici: packageVersion('undici'),
        fastify: packageVersion('fastify'),
        '@fastify/http-proxy': packageVersion('@fastify/http-proxy'),
        'http-proxy': packageVersion('http-proxy'),
      },
    },
    loadAverage: { before: loadBefore, after: loadavg()[0]! },
    wallSeconds: (performance.now() - started) / 1000,
    proxyCost,
    scenarios: results,
  };
}
