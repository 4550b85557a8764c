import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { haproxyConfig, nginxConfig, proxyConfigs } from '../live/proxies.ts';
import { interleave } from '../live/run-live.ts';
import { liveGoals } from '../report/live.ts';
import { buildReport, goals } from '../report/markdown.ts';
import { type BalancingResults, type LiveResults, type LiveRun, type LiveSample, replacePart } from '../results.ts';
import { packageBalancer, type SimRun } from '../sim/run-sim.ts';
import { scenarios } from '../sim/scenarios.ts';
import { NEVER, simulate } from '../sim/simulate.ts';
import { compare, medianInterval } from '../stats.ts';
import { strategies } from '../strategies.ts';

/** Debian installs nginx and HAProxy in /usr/sbin, which a non-login PATH may lack. */
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const has = (program: string): boolean => spawnSync('sh', ['-c', `command -v ${program}`], { env }).status === 0;
/** In CI the harness tests must run: a missing nginx or HAProxy fails them instead of skipping them. */
const skipUnless = (program: string): boolean => !has(program) && process.env.CI === undefined;
const entry = (id: string) => strategies.find((s) => s.id === id)!;

describe('package strategies in the simulator', () => {
  it('round robin spreads homogeneous traffic exactly evenly', () => {
    const r = simulate(scenarios[0]!, 0.5, packageBalancer(entry('round-robin')), { seed: 1, durationMs: 4_000, warmupMs: 0 });
    for (const share of r.share) expect(share).toBeCloseTo(0.1, 3);
  });

  it('peak EWMA reads the virtual clock and steers away from the slow server', () => {
    const slow = scenarios.find((s) => s.name === 'slow-server')!;
    const r = simulate(slow, 0.8, packageBalancer(entry('peak-ewma')), { seed: 1, durationMs: 4_000, warmupMs: 500 });
    expect(r.share[0]).toBeLessThan(0.05);
  });
});

describe('time to adapt', () => {
  it('peak EWMA cuts a server that slowed down within a second; round robin never does', () => {
    const scenario = scenarios.find((s) => s.name === 'slowdown')!;
    const options = { seed: 1, durationMs: 6_000, warmupMs: 500 };
    expect(simulate(scenario, 0.8, packageBalancer(entry('round-robin')), options).adaptAfterSlowdownMs).toBe(NEVER);
    const ewma = simulate(scenario, 0.8, packageBalancer(entry('peak-ewma')), options).adaptAfterSlowdownMs!;
    expect(ewma).toBeGreaterThanOrEqual(0);
    expect(ewma).toBeLessThan(1_000);
  });
});

describe('interleave', () => {
  it('spreads the second list evenly through the first and keeps every element once', () => {
    const out = interleave<string | number>(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k'], [1, 2, 3, 4, 5, 6]);
    expect(out).toHaveLength(17);
    expect(out.filter((x) => typeof x === 'number')).toEqual([1, 2, 3, 4, 5, 6]);
    const positions = out.flatMap((x, i) => (typeof x === 'number' ? [i] : []));
    for (let i = 1; i < positions.length; i++) expect(positions[i]! - positions[i - 1]!).toBeLessThanOrEqual(3);
    expect(interleave<number>([], [1, 2])).toEqual([1, 2]);
    expect(interleave(['a'], [])).toEqual(['a']);
  });
});

describe('proxy configs', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('bind to 127.0.0.1 only and list every upstream', () => {
    const upstreams = [4001, 4002, 4003];
    for (const text of [nginxConfig('/x', 8080, upstreams, 'least_conn'), haproxyConfig(8080, upstreams, 'leastconn')]) {
      for (const p of upstreams) expect(text).toContain(`127.0.0.1:${p}`);
      expect(text).toContain('127.0.0.1:8080');
      expect(text).not.toMatch(/listen\s+8080|bind\s+\*|0\.0\.0\.0/);
    }
  });

  it.skipIf(skipUnless('nginx'))('nginx accepts every generated config', () => {
    for (const c of proxyConfigs.filter((x) => x.kind === 'nginx')) {
      const dir = mkdtempSync(join(tmpdir(), 'ballast-nginx-test-'));
      dirs.push(dir);
      writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, 18080, [18081, 18082], c.directive));
      const r = spawnSync('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], {
        encoding: 'utf8',
        env,
      });
      expect(r.status, `${c.name}: ${r.stderr}`).toBe(0);
    }
  });

  it.skipIf(skipUnless('haproxy'))('HAProxy accepts every generated config', () => {
    for (const c of proxyConfigs.filter((x) => x.kind === 'haproxy')) {
      const dir = mkdtempSync(join(tmpdir(), 'ballast-haproxy-test-'));
      dirs.push(dir);
      writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig(18080, [18081, 18082], c.directive));
      const r = spawnSync('haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8', env });
      expect(r.status, `${c.name}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });
});

/** The slow-server scenario's description, shared by the simulated and live fixtures. */
const slowServer = { name: 'slow-server', title: 'One server 5× slower', description: '', servers: ['s0', 's1'], watch: 0 };
const latency = (p99: number) => ({ p50: p99 / 5, p90: p99 / 2, p99, p999: p99 * 1.5, max: p99 * 2 });
const simRun = (strategy: string, p99: number): SimRun => ({
  strategy,
  utilisation: 0.8,
  wallMs: 1,
  requests: 100,
  ok: 100,
  errors: 0,
  timeouts: 0,
  errorRate: 0,
  throughput: 10,
  latency: latency(p99),
  share: [0.5, 0.5],
  cacheHitRate: null,
  adaptAfterCrashMs: null,
  adaptAfterReturnMs: null,
  adaptAfterSlowdownMs: null,
  events: 1,
});
const results = (p2c: number): BalancingResults => ({
  simulation: {
    command: 'npm run bench:balancing',
    machine: { node: 'v24', cpus: 2, cpuModel: 'cpu', date: '2026-01-01' },
    settings: { seed: 1, durationMs: 1000, warmupMs: 0, utilisations: [0.8], balancerOptions: {} },
    strategies: [
      { id: 'round-robin', label: 'round robin' },
      { id: 'p2c', label: 'P2C' },
      { id: 'peak-ewma', label: 'peak EWMA' },
    ],
    wallSeconds: 1,
    scenarios: [
      {
        ...slowServer,
        runs: [simRun('oracle', 50), simRun('round-robin', 5000), simRun('p2c', p2c), simRun('peak-ewma', 60)],
      },
    ],
  },
  live: null,
});

describe('report', () => {
  it('checks the simulation goals against the figures', () => {
    const met = goals(results(80)).map((g) => g.met);
    expect(met).toEqual([true, true, true, true]);
    const missed = goals(results(150));
    expect(missed[0]!.met).toBe(false); // 150 ms is 3× the oracle
    expect(missed[1]!.met).toBe(true); // and still 33× better than round robin
  });

  it('embeds every chart it produces and escapes labels in SVG', () => {
    const { markdown, charts } = buildReport(results(80));
    for (const file of charts.keys()) expect(markdown).toContain(`balancing/${file}`);
    for (const svg of charts.values()) {
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.trim().endsWith('</svg>')).toBe(true);
    }
    expect(markdown).toContain('| Simulation, one server 5× slower, 80%: P2C p99 within 2× of the oracle | 80 ms vs 50 ms = 1.6× | yes |');
  });
});

describe('medians with intervals', () => {
  it('uses order statistics whose binomial coverage reaches the level', () => {
    const five = medianInterval([5, 1, 4, 2, 3]);
    expect(five).toEqual({ median: 3, low: 1, high: 5, confidence: 1 - 2 / 32, n: 5 });
    // Nine runs: [x(2), x(8)] covers the median with probability 1 − 2·(1 + 9)/512.
    const nine = medianInterval([9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(nine).toMatchObject({ median: 5, low: 2, high: 8, n: 9 });
    expect(nine.confidence).toBeCloseTo(1 - 20 / 512, 10);
    expect(medianInterval([4, 2]).median).toBe(3);
    expect(medianInterval([Number.NaN, 7]).n).toBe(1);
  });

  it('calls a difference only where the intervals separate', () => {
    const a = medianInterval([10, 11, 12]);
    expect(compare(a, medianInterval([13, 14, 15]))).toBe('lower');
    expect(compare(a, medianInterval([12, 14, 15]))).toBe('overlap');
    expect(compare(medianInterval([20, 21, 22]), a)).toBe('higher');
  });
});

describe('live report', () => {
  const sample = (p99: number, round: number): LiveSample => ({
    round,
    ratePerSec: 200,
    sent: 100,
    completed: 100,
    errors: 0,
    timeouts: 0,
    errorRate: 0,
    throughput: 200,
    latency: { p50: p99 / 4, p90: p99 / 2, p99, p999: p99 * 1.2, max: p99 * 2 },
    share: [0.02, 0.98],
    cpuSeconds: 0.1,
    requestsPerCpuSecond: 1000,
    generatorLagP99Ms: 2,
  });
  const run = (balancer: string, kind: LiveRun['kind'], strategy: string | null, p99s: number[]): LiveRun => {
    const samples = p99s.map(sample);
    const of = (f: (s: LiveSample) => number) => medianInterval(samples.map(f));
    return {
      balancer,
      kind,
      strategy,
      p50: of((s) => s.latency.p50),
      p99: of((s) => s.latency.p99),
      p999: of((s) => s.latency.p999),
      errorRate: of((s) => s.errorRate),
      requestsPerCpuSecond: of((s) => s.requestsPerCpuSecond),
      latency: samples[0]!.latency,
      share: [0.02, 0.98],
      samples,
    };
  };
  const live = (leastConnections: number[]): LiveResults => ({
    format: 2,
    command: 'npm run bench:balancing -- --live',
    machine: { node: 'v24', cpus: 2, cpuModel: 'cpu', date: '2026-01-01' },
    settings: {
      repeats: 3,
      confidenceLevel: 0.95,
      warmupMs: 1000,
      timeoutMs: 5000,
      utilisation: 0.8,
      concurrency: 2,
      meanMs: 80,
      arrivals: 'constant',
      versions: { node: '24' },
    },
    loadAverage: { before: 1, after: 1 },
    wallSeconds: 60,
    proxyCost: null,
    scenarios: [
      {
        ...slowServer,
        durationMs: 7000,
        ratePerSec: 200,
        runs: [
          run('Ballast least connections', 'ballast', 'least-connections', leastConnections),
          run('Ballast peak EWMA', 'ballast', 'peak-ewma', [300, 310, 320]),
          run('nginx least_conn', 'nginx', null, [500, 510, 520]),
          run('HAProxy leastconn', 'haproxy', null, [480, 560, 600]),
        ],
      },
    ],
  });

  it('claims "lower" like for like only where the intervals separate', () => {
    const separated = liveGoals(live([400, 420, 440])).filter((g) => g.goal.includes('like for like'));
    expect(separated.map((g) => g.met)).toEqual([true, true]);
    const overlapping = liveGoals(live([450, 505, 530])).filter((g) => g.goal.includes('like for like'));
    expect(overlapping.map((g) => g.met)).toEqual([false, false]);
    expect(overlapping[0]!.measured).toContain('intervals overlap');
    const best = liveGoals(live([450, 505, 530])).filter((g) => g.goal.includes('best of'));
    expect(best.map((g) => g.met)).toEqual([true, true]);
    expect(best[0]!.goal).toContain('Ballast peak EWMA');
  });

  it('a simulation run keeps the live half, its tables and its charts', () => {
    const before: BalancingResults = { simulation: null, live: live([400, 420, 440]) };
    const after = replacePart(before, { simulation: results(80).simulation });
    expect(after.live).toBe(before.live);
    const { markdown, charts } = buildReport(after);
    expect(markdown).toContain('## Simulation');
    expect(markdown).toContain('## Live traffic');
    expect(markdown).toContain('| Ballast least connections | 105 [100–110] |');
    expect([...charts.keys()].filter((f) => f.startsWith('live-'))).toEqual(['live-slow-server-latency.svg', 'live-slow-server-share.svg']);
    expect([...charts.keys()].some((f) => f.startsWith('sim-'))).toBe(true);
    // And a live run keeps the simulation.
    const relive = replacePart(after, { live: live([1, 2, 3]) });
    expect(relive.simulation).toBe(after.simulation);
  });

  it('does not render live results of an older format', () => {
    const old = { simulation: null, live: { scenarios: [] } } as unknown as BalancingResults;
    expect(buildReport(old).markdown).toContain('Not run yet with this version of the harness');
  });
});
