/**
 * What a proxy costs: in front of backends that answer at once, (1) a closed loop of
 * `wrk` connections measures requests per second and per CPU-second of the proxy process
 * (its capacity on one core), and (2) an open loop at half its capacity (the lower of
 * requests per CPU-second and per second: a busy machine leaves it less than a core),
 * capped at what the load generator sends reliably, measures latency through the proxy
 * against calling the backends directly at the same rate and the same time: the
 * difference is the latency the proxy adds. Only the proxy's own process is charged
 * CPU time (wrk and the backends are processes of their own). Every proxy is measured `repeats` times, the order rotated
 * each round, and reported as medians with confidence intervals.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Histogram } from '@ballast/common';
import type { ProxyCostResults, ProxyCostRun, ProxyCostSample } from '../results.ts';
import { medianInterval } from '../stats.ts';
import type { BackendConfig } from './backend.ts';
import { rawClient } from './client.ts';
import type { Contender } from './contenders.ts';
import { cpuSeconds, forkModule, type Running } from './processes.ts';

export const COST_SETTINGS = {
  backends: 4,
  connections: 32,
  closedLoopMs: 3_000,
  latencyMs: 3_000,
  latencyWarmupMs: 500,
  latencyRateCapPerSec: 5_000,
};

/** Rotates `items` left by `k`: round k starts with a different contender. */
export function rotate<T>(items: T[], k: number): T[] {
  const n = items.length;
  if (n === 0) return [];
  const s = ((k % n) + n) % n;
  return [...items.slice(s), ...items.slice(0, s)];
}

/** A closed loop of `wrk` against 127.0.0.1:`port` for about `ms` (whole seconds). */
export function wrk(port: number, ms: number, path = '/item/k1'): { requests: number; non2xx: number } {
  const out = spawnSync(
    'wrk',
    ['-t1', `-c${COST_SETTINGS.connections}`, `-d${Math.max(1, Math.round(ms / 1000))}s`, `http://127.0.0.1:${port}${path}`],
    {
      encoding: 'utf8',
    },
  );
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  const requests = Number(/(\d+) requests in/.exec(out.stdout)?.[1] ?? Number.NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out.stdout)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out.stdout);
  const errors = socketErrors ? socketErrors.slice(1).reduce((n, x) => n + Number(x), 0) : 0;
  return { requests, non2xx: non2xx + errors };
}

interface Percentiles {
  p50: number;
  p99: number;
}

/**
 * Latency at a constant offered rate, through the proxy and straight to the backends at
 * once: every slot sends one request each way (in alternating order), so a stall of the
 * machine falls on both alike and their difference is the proxy's own. The generator
 * sleeps between 1 ms ticks (a generator that spins would take a core from the proxy and
 * the backends on a two-core machine and add scheduling delay to the path with more
 * processes in it) and sends every slot that came due, on `node:net` connections that
 * parse nothing but the status and length (see `rawClient`). Each request is timed from
 * the moment it was sent to the end of its response: the generator's own hiccups delay
 * sends but are not counted, while anything queueing in the proxy still is, since sends
 * never wait for answers.
 */
async function pairedLatency(
  proxyPort: number,
  backendPorts: number[],
  ratePerSec: number,
): Promise<{ proxied: Percentiles; direct: Percentiles; errors: number; pairsPerSec: number }> {
  const proxied = rawClient(proxyPort, 'k1');
  const direct = backendPorts.map((port) => rawClient(port, 'k1'));
  const histograms = { proxied: new Histogram(), direct: new Histogram() };
  let errors = 0;
  const pending = new Set<Promise<void>>();
  const interval = 1000 / ratePerSec;
  const start = performance.now();
  const end = start + COST_SETTINGS.latencyWarmupMs + COST_SETTINGS.latencyMs;
  const measureFrom = start + COST_SETTINGS.latencyWarmupMs;
  const send = (client: ReturnType<typeof rawClient>, histogram: Histogram, counted: boolean): void => {
    const sentAt = performance.now();
    const p = client.send().then(
      (status) => {
        if (!counted) return;
        if (status === 200) histogram.record(performance.now() - sentAt);
        else errors++;
      },
      () => {
        if (counted) errors++;
      },
    );
    const tracked = p.finally(() => pending.delete(tracked));
    pending.add(tracked);
  };
  let next = start;
  let i = 0;
  let pairs = 0;
  try {
    while (next < end) {
      const now = performance.now();
      // A generator that fell behind (a stall of the shared machine) skips the slots it missed instead of bursting.
      if (now - next > 10) next = now;
      for (; next <= now && next < end; next += interval, i++) {
        const counted = next >= measureFrom;
        const backend = direct[i % direct.length]!;
        if (i % 2 === 0) {
          send(proxied, histograms.proxied, counted);
          send(backend, histograms.direct, counted);
        } else {
          send(backend, histograms.direct, counted);
          send(proxied, histograms.proxied, counted);
        }
        if (counted) pairs++;
      }
      await new Promise<void>((resolve) => setTimeout(resolve, Math.max(1, Math.min(next - performance.now(), 20))));
    }
    const settled = Promise.allSettled([...pending]);
    const late = await Promise.race([settled.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 10_000).unref())]);
    if (late) errors += pending.size;
    const percentiles = (h: Histogram): Percentiles => {
      const summary = h.summary();
      return { p50: summary.p50, p99: summary.p99 };
    };
    return {
      proxied: percentiles(histograms.proxied),
      direct: percentiles(histograms.direct),
      errors,
      pairsPerSec: pairs / (COST_SETTINGS.latencyMs / 1000),
    };
  } finally {
    proxied.close();
    for (const d of direct) d.close();
  }
}

async function one(contender: Contender, ports: number[], round: number): Promise<ProxyCostSample> {
  const instance = await contender.start(ports);
  try {
    wrk(instance.port, 1_000); // warm-up: connections, JIT
    const cpu0 = cpuSeconds(instance.pid);
    const started = performance.now();
    const closed = wrk(instance.port, COST_SETTINGS.closedLoopMs);
    const wallSeconds = (performance.now() - started) / 1000;
    const cpu = cpuSeconds(instance.pid) - cpu0;
    const perCpu = closed.requests / cpu;
    const perSecond = closed.requests / wallSeconds;
    // Half of what the proxy served: per CPU-second on a quiet machine; per second of wall
    // time when other work left it less than a core. Capped at what the generator sends reliably.
    const half = Math.round(Math.min(perCpu, perSecond) / 2);
    const rate = Math.max(50, Math.min(COST_SETTINGS.latencyRateCapPerSec, half));
    const { proxied, direct, errors, pairsPerSec } = await pairedLatency(instance.port, ports, rate);
    return {
      round,
      requests: closed.requests,
      requestsPerSecond: perSecond,
      cpuSeconds: cpu,
      requestsPerCpuSecond: perCpu,
      latencyRatePerSec: Math.round(pairsPerSec),
      halfCapacityPerSec: half,
      proxied: { p50: proxied.p50, p99: proxied.p99 },
      direct: { p50: direct.p50, p99: direct.p99 },
      addedP50Us: (proxied.p50 - direct.p50) * 1000,
      addedP99Us: (proxied.p99 - direct.p99) * 1000,
      errors: closed.non2xx + errors,
    };
  } finally {
    await instance.stop();
  }
}

export async function runProxyCost(
  contenders: Contender[],
  repeats: number,
  level: number,
  log: (line: string) => void,
): Promise<ProxyCostResults> {
  const backends: Running[] = [];
  const ports: number[] = [];
  for (let i = 0; i < COST_SETTINGS.backends; i++) {
    const config: BackendConfig = { id: `s${i}`, concurrency: 1, meanMs: 0, seed: 1 };
    const { running, ready } = await forkModule<{ port: number }>(join(import.meta.dirname, 'backend.ts'), [JSON.stringify(config)]);
    backends.push(running);
    ports.push(ready.port);
  }
  const samples = new Map<Contender, ProxyCostSample[]>(contenders.map((c) => [c, []]));
  try {
    for (let round = 0; round < repeats; round++) {
      for (const contender of rotate(contenders, round)) {
        try {
          const s = await one(contender, ports, round);
          samples.get(contender)!.push(s);
          log(
            `  ${contender.label.padEnd(38)} ${Math.round(s.requestsPerCpuSecond).toString().padStart(6)} req/CPU-s  ${Math.round(s.requestsPerSecond).toString().padStart(6)} req/s  added p50 ${Math.round(s.addedP50Us).toString().padStart(5)} µs  p99 ${Math.round(s.addedP99Us).toString().padStart(6)} µs at ${s.latencyRatePerSec}/s${s.errors ? `  errors ${s.errors}` : ''}`,
          );
        } catch (error) {
          log(`  ${contender.label}: failed: ${(error as Error).message}`);
        }
      }
    }
  } finally {
    await Promise.all(backends.map((b) => b.stop()));
  }
  const runs: ProxyCostRun[] = contenders.map((c) => {
    const s = samples.get(c)!;
    const of = (f: (x: ProxyCostSample) => number) => medianInterval(s.map(f), level);
    return {
      proxy: c.label,
      kind: c.kind,
      requestsPerCpuSecond: of((x) => x.requestsPerCpuSecond),
      requestsPerSecond: of((x) => x.requestsPerSecond),
      addedP50Us: of((x) => x.addedP50Us),
      addedP99Us: of((x) => x.addedP99Us),
      latencyRatePerSec: of((x) => x.latencyRatePerSec),
      samples: s,
    };
  });
  const { latencyWarmupMs: _, ...settings } = COST_SETTINGS;
  return { settings, runs };
}
