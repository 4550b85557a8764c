import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { haproxyConfig, nginxConfig, proxyConfigs } from '../live/proxies.ts';
import { interleave } from '../live/run-live.ts';
import { buildReport, goals } from '../report/markdown.ts';
import type { BalancingResults } from '../results.ts';
import { packageBalancer, type SimRun } from '../sim/run-sim.ts';
import { scenarios } from '../sim/scenarios.ts';
import { NEVER, simulate } from '../sim/simulate.ts';
import { strategies } from '../strategies.ts';

const has = (program: string): boolean => spawnSync('sh', ['-c', `command -v ${program}`]).status === 0;
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

  it.skipIf(!has('nginx'))('nginx accepts every generated config', () => {
    for (const c of proxyConfigs.filter((x) => x.kind === 'nginx')) {
      const dir = mkdtempSync(join(tmpdir(), 'ballast-nginx-test-'));
      dirs.push(dir);
      writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, 18080, [18081, 18082], c.directive));
      const r = spawnSync('nginx', ['-t', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { encoding: 'utf8' });
      expect(r.status, `${c.name}: ${r.stderr}`).toBe(0);
    }
  });

  it.skipIf(!has('haproxy'))('HAProxy accepts every generated config', () => {
    for (const c of proxyConfigs.filter((x) => x.kind === 'haproxy')) {
      const dir = mkdtempSync(join(tmpdir(), 'ballast-haproxy-test-'));
      dirs.push(dir);
      writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig(18080, [18081, 18082], c.directive));
      const r = spawnSync('haproxy', ['-c', '-f', join(dir, 'haproxy.cfg')], { encoding: 'utf8' });
      expect(r.status, `${c.name}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });
});

describe('report', () => {
  const latency = (p99: number) => ({ p50: p99 / 5, p90: p99 / 2, p99, p999: p99 * 1.5, max: p99 * 2 });
  const simRun = (strategy: string, p99: number): SimRun => ({
    strategy,
    utilisation: 0.8,
    wallMs: 1,
    requests: 100,
    ok: 100,
    errors: 0,
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
          name: 'slow-server',
          title: 'One server 5× slower',
          description: '',
          servers: ['s0', 's1'],
          watch: 0,
          runs: [simRun('oracle', 50), simRun('round-robin', 5000), simRun('p2c', p2c), simRun('peak-ewma', 60)],
        },
      ],
    },
    live: null,
  });

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
