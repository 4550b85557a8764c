/**
 * One simulated run: a scenario at a utilisation, routed by one balancer. Servers are
 * modelled as `concurrency` slots plus a FIFO queue; requests arrive open-loop (the
 * arrival process never waits for the system), so overload shows up as queueing delay.
 * The balancer reads the virtual clock and its own seeded random stream.
 */
import { Histogram } from '@ballast/common';
import { UtilisationMeter } from '../utilisation.ts';
import { EventQueue } from './event-queue.ts';
import { type Random, seeded } from './random.ts';
import { arrivalRatePerMs, type Scenario, type ServerSpec } from './scenarios.ts';

/** What a balancer sees of a server when it is built. */
export interface EndpointInfo {
  id: string;
  weight: number;
}

/** The outcome report for one routed request. */
export interface Routed {
  /** Index of the chosen server; -1 when the balancer had none to offer (the request fails at once). */
  server: number;
  /** Called once, when the request completes or fails. `load` is the utilisation the server reports (0–1). */
  done(ok: boolean, latencyMs: number, load: number): void;
  /** Called instead of `done` when the client gives up (its timeout): neither a success nor a failure of the server. */
  cancel?(): void;
}

/** A balancer under test, adapted to the simulator. */
export interface SimBalancer {
  route(key: string): Routed;
  close(): void;
}

/** Live view of the servers, for the oracle (which sees everything). */
export interface ServerView {
  readonly spec: ServerSpec;
  /** True mean service time right now (after a slowdown, the slower one), ms. */
  readonly meanServiceMs: number;
  readonly outstanding: number;
  readonly up: boolean;
}

export interface BalancerContext {
  endpoints: EndpointInfo[];
  clock: EventQueue;
  random: Random;
  servers: readonly ServerView[];
}

export type BalancerFactory = (context: BalancerContext) => SimBalancer;

export interface SimOptions {
  seed: number;
  /** Simulated time during which requests arrive, ms. */
  durationMs: number;
  /** Requests arriving before this are routed but not measured, ms. */
  warmupMs: number;
  /** Width of the windows used for time-to-adapt, ms. @default 100 */
  windowMs?: number;
  /**
   * Clients give up on a request after this long, ms: it counts as an error (a timeout) at
   * this latency, and the balancer hears `cancel()`; the server still finishes the work.
   * Without it an overloaded server's backlog, and so p99, grows with the run's length.
   * @default none (clients wait for ever)
   */
  clientTimeoutMs?: number;
}

export interface SimResult {
  requests: number;
  ok: number;
  /** Failed or timed-out requests. */
  errors: number;
  /** Requests the client gave up on after `clientTimeoutMs`. */
  timeouts: number;
  errorRate: number;
  /** Measured requests that succeeded before arrivals stopped, per second of measured time (a backlog lowers it). */
  throughput: number;
  /** Latency of successful requests, and of timed-out ones at `clientTimeoutMs`, ms. */
  latency: { p50: number; p90: number; p99: number; p999: number; max: number };
  /** Share of measured requests routed to each server. */
  share: number[];
  /** Cache hit rate over measured requests (cache scenarios only). */
  cacheHitRate: number | null;
  /**
   * Time to adapt, ms: from a crash until a 100-ms window has under 1% errors; from the
   * return until the server gets at least half its fair share for 5 windows in a row; from
   * a slowdown until it gets less than half its fair share for 5 windows in a row. Null
   * when the scenario has no such change; {@link NEVER} (-1) when it did not happen within the run.
   */
  adaptAfterCrashMs: number | null;
  adaptAfterReturnMs: number | null;
  adaptAfterSlowdownMs: number | null;
  /** Events processed, a measure of simulation work. */
  events: number;
}

/** Time to adapt when the balancer never adapted within the run (JSON has no Infinity). */
export const NEVER = -1;

class Server implements ServerView {
  readonly spec: ServerSpec;
  busy = 0;
  queue: Job[] = [];
  head = 0;
  up = true;
  slowed = false;
  /** Incremented on crash so completions scheduled before it are ignored. */
  epoch = 0;
  running = new Set<Job>();
  cache: Map<string, true> | null;
  readonly meter: UtilisationMeter;

  constructor(spec: ServerSpec) {
    this.spec = spec;
    this.cache = spec.cache ? new Map() : null;
    this.meter = new UtilisationMeter(spec.concurrency, 0);
  }

  get meanServiceMs(): number {
    return this.spec.service.mean * (this.slowed ? this.spec.slowdown!.factor : 1);
  }

  get outstanding(): number {
    return this.busy + this.queue.length - this.head;
  }

  /** Completion time of `work` ms of service starting at `start`, skipping stalls. */
  finish(start: number, work: number): number {
    return finishTime(this.spec.stalls, start, work);
  }
}

/** When `work` ms of service that starts at `start` completes on a server that stalls periodically. */
export function finishTime(stalls: ServerSpec['stalls'], start: number, work: number): number {
  if (!stalls) return start + work;
  const { periodMs, durationMs, offsetMs } = stalls;
  let t = start;
  let remaining = work;
  while (true) {
    const k = Math.floor((t - offsetMs) / periodMs);
    const stallStart = k * periodMs + offsetMs;
    if (t >= stallStart && t < stallStart + durationMs) {
      t = stallStart + durationMs;
      continue;
    }
    const nextStall = t >= stallStart ? stallStart + periodMs : stallStart;
    if (remaining <= nextStall - t) return t + remaining;
    remaining -= nextStall - t;
    t = nextStall + durationMs;
  }
}

interface Job {
  arrivedAt: number;
  key: string;
  uService: number;
  uFail: number;
  routed: Routed;
  measured: boolean;
  /** Answered, failed or given up on: nothing more is recorded for it. */
  settled: boolean;
}

export function simulate(scenario: Scenario, utilisation: number, factory: BalancerFactory, options: SimOptions): SimResult {
  const { durationMs, warmupMs } = options;
  const windowMs = options.windowMs ?? 100;
  const clock = new EventQueue();
  const workload = seeded(options.seed, `${scenario.name}/${utilisation}/workload`);
  const servers = scenario.servers.map((spec) => new Server(spec));
  const n = servers.length;
  const balancer = factory({
    endpoints: scenario.servers.map((s) => ({ id: s.id, weight: s.weight })),
    clock,
    random: seeded(options.seed, `${scenario.name}/${utilisation}/balancer`),
    servers,
  });

  const hist = new Histogram();
  const picks = new Array<number>(n).fill(0);
  const windows = Math.ceil(durationMs / windowMs);
  const winCount = new Float64Array(windows);
  const winErrors = new Float64Array(windows);
  const winWatched = new Float64Array(windows);
  const watch = scenario.watch ?? -1;
  let requests = 0;
  let ok = 0;
  let okInWindow = 0;
  let errors = 0;
  let timeouts = 0;
  const clientTimeoutMs = options.clientTimeoutMs;
  let hits = 0;
  let lookups = 0;

  const complete = (server: Server, job: Job, success: boolean): void => {
    if (job.settled) return;
    job.settled = true;
    const latency = clock.now() - job.arrivedAt;
    job.routed.done(success, latency, server.meter.read(clock.now()));
    if (!job.measured) return;
    if (success) {
      ok++;
      if (clock.now() <= durationMs) okInWindow++;
      hist.record(latency);
    } else {
      errors++;
      const w = Math.floor(job.arrivedAt / windowMs);
      if (w < windows) winErrors[w]!++;
    }
  };

  const start = (server: Server, job: Job): void => {
    server.busy++;
    server.meter.set(server.busy, clock.now());
    server.running.add(job);
    const spec = server.spec;
    let work: number;
    let success = true;
    if (spec.failureRate !== undefined && job.uFail < spec.failureRate) {
      work = spec.failMs ?? 1;
      success = false;
    } else {
      work = spec.service.sample(job.uService);
      if (server.slowed) work *= spec.slowdown!.factor;
      if (server.cache) {
        const hit = server.cache.delete(job.key);
        server.cache.set(job.key, true);
        if (server.cache.size > spec.cache!.size) server.cache.delete(server.cache.keys().next().value!);
        if (hit) work *= spec.cache!.hitFactor;
        if (job.measured) {
          lookups++;
          if (hit) hits++;
        }
      }
    }
    const epoch = server.epoch;
    clock.at(server.finish(clock.now(), work), () => {
      if (server.epoch !== epoch) return;
      server.busy--;
      server.meter.set(server.busy, clock.now());
      server.running.delete(job);
      complete(server, job, success);
      if (server.head < server.queue.length) {
        const next = server.queue[server.head++]!;
        if (server.head > 1024 && server.head * 2 > server.queue.length) {
          server.queue = server.queue.slice(server.head);
          server.head = 0;
        }
        start(server, next);
      }
    });
  };

  // Crashes, returns and slowdowns.
  for (const server of servers) {
    const slowdown = server.spec.slowdown;
    if (slowdown) clock.at(slowdown.atShare * durationMs, () => (server.slowed = true));
    const outage = server.spec.outage;
    if (!outage) continue;
    clock.at(outage.fromShare * durationMs, () => {
      server.up = false;
      server.epoch++;
      const lost = [...server.running, ...server.queue.slice(server.head)];
      server.running.clear();
      server.queue = [];
      server.head = 0;
      server.busy = 0;
      server.meter.set(0, clock.now());
      for (const job of lost) complete(server, job, false);
      server.cache?.clear();
    });
    clock.at(outage.toShare * durationMs, () => {
      server.up = true;
    });
  }

  // Open-loop arrivals; a bursty process switches rate between phases.
  const rate = arrivalRatePerMs(scenario, utilisation);
  let phaseEnd = 0;
  let multiplier = 1;
  let burst = false;
  const nextArrival = (now: number): number => {
    if (scenario.arrivals === 'poisson') return now - Math.log(1 - workload()) / rate;
    let t = now;
    while (true) {
      if (t >= phaseEnd) {
        burst = !burst;
        multiplier = burst ? 2 : 2 / 3;
        phaseEnd = t - Math.log(1 - workload()) * (burst ? 200 : 600);
      }
      const candidate = t - Math.log(1 - workload()) / (rate * multiplier);
      if (candidate <= phaseEnd) return candidate;
      t = phaseEnd;
    }
  };

  const giveUp = (job: Job): void => {
    if (job.settled) return;
    job.settled = true;
    job.routed.cancel?.();
    if (!job.measured) return;
    errors++;
    timeouts++;
    hist.record(clientTimeoutMs!);
    const w = Math.floor(job.arrivedAt / windowMs);
    if (w < windows) winErrors[w]!++;
  };

  const arrive = (): void => {
    const now = clock.now();
    const job: Job = {
      arrivedAt: now,
      key: `k${Math.floor(workload() * scenario.keySpace)}`,
      uService: workload(),
      uFail: workload(),
      routed: undefined as unknown as Routed,
      measured: now >= warmupMs,
      settled: false,
    };
    const routed = balancer.route(job.key);
    job.routed = routed;
    if (job.measured) {
      requests++;
      if (routed.server >= 0) picks[routed.server]!++;
      const w = Math.floor(now / windowMs);
      winCount[w]!++;
      if (routed.server === watch) winWatched[w]!++;
    }
    const server = servers[routed.server];
    if (!server) {
      if (job.measured) {
        errors++;
        winErrors[Math.floor(now / windowMs)]!++;
      }
    } else if (!server.up) {
      // Connection refused: the client learns at once.
      clock.at(now + 0.1, () => complete(server, job, false));
    } else {
      if (server.busy < server.spec.concurrency) start(server, job);
      else server.queue.push(job);
      if (clientTimeoutMs !== undefined) clock.at(now + clientTimeoutMs, () => giveUp(job));
    }
    const next = nextArrival(now);
    if (next < durationMs) clock.at(next, arrive);
  };
  clock.at(nextArrival(0), arrive);
  const events = clock.run();
  balancer.close();

  const summary = hist.summary();
  const measuredMs = durationMs - warmupMs;
  // First window from `fromMs` that starts `run` consecutive windows (before window `until`) meeting `ok`.
  const adapted = (fromMs: number, until: number, run: number, ok: (w: number) => boolean): number => {
    for (let w = Math.ceil(fromMs / windowMs); w + run <= until; w++) {
      let sustained = true;
      for (let k = w; k < w + run && sustained; k++) sustained = ok(k);
      if (sustained) return w * windowMs - fromMs;
    }
    return NEVER;
  };
  const fair = 0.5 / n;
  const watched = watch >= 0 ? scenario.servers[watch]! : undefined;
  let adaptAfterCrashMs: number | null = null;
  let adaptAfterReturnMs: number | null = null;
  let adaptAfterSlowdownMs: number | null = null;
  if (watched?.outage) {
    const { fromShare, toShare } = watched.outage;
    const returnW = Math.floor((toShare * durationMs) / windowMs);
    adaptAfterCrashMs = adapted(fromShare * durationMs, returnW, 1, (w) => winErrors[w]! < 0.01 * winCount[w]!);
    adaptAfterReturnMs = adapted(toShare * durationMs, windows, 5, (w) => winWatched[w]! >= fair * winCount[w]!);
  }
  if (watched?.slowdown) {
    adaptAfterSlowdownMs = adapted(watched.slowdown.atShare * durationMs, windows, 5, (w) => winWatched[w]! < fair * winCount[w]!);
  }

  return {
    requests,
    ok,
    errors,
    timeouts,
    errorRate: requests === 0 ? 0 : errors / requests,
    throughput: (okInWindow / measuredMs) * 1000,
    latency: { p50: summary.p50, p90: summary.p90, p99: summary.p99, p999: summary.p999, max: summary.max },
    share: picks.map((p) => (requests === 0 ? 0 : p / requests)),
    cacheHitRate: lookups === 0 ? null : hits / lookups,
    adaptAfterCrashMs,
    adaptAfterReturnMs,
    adaptAfterSlowdownMs,
    events,
  };
}
