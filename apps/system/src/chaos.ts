/**
 * A chaos run against the distributed deployment: open-loop load at a share of measured
 * capacity while a seeded fault schedule kills and pauses processes, then, with the load
 * stopped and the system drained, the invariants: every acknowledged job finished exactly
 * once (the queue's completion ledger), every finished job recorded and billed exactly
 * once (the usage invariant checker), no process grown past a memory bound.
 */
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RedisQueue } from '@ballast/app-queue';
import { UsageStore } from '@ballast/app-usage';
import { ColdStorage, formatReport, runBilling, type VerifyReport, verifyUsage } from '@ballast/app-usage/billing';
import { sampleJpeg } from '@ballast/app-worker';
import { InvalidOptionError, integer, nearestRank, seededRandom, sleep } from '@ballast/common';
import { command } from '@ballast/test/redis';
import sharp from 'sharp';
import { settleForChecks } from './chaos-drain.ts';
import { type LaunchedTopology, launchDistributed } from './launcher.ts';
import { rssBytes } from './processes.ts';

/** The faults a chaos run can strike. */
export const FAULT_KINDS = [
  'kill-api',
  'stop-api',
  'kill-worker',
  'stop-worker',
  'kill-redis-primary',
  'stop-redis-primary',
  'partition-redis-primary',
  'kill-postgres',
  'kill-identity',
  'stop-identity',
  'slow-upstream',
] as const;

/** One kind of fault. */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** A fault of the schedule. */
export interface PlannedFault {
  kind: FaultKind;
  /** When it strikes, ms after the load starts. */
  atMs: number;
  /** The service it strikes (`api-2`, `worker-1`, `redis-primary`, `postgres`, `identity`). */
  target: string;
  /** How long a pause (or outage) lasts, ms; 0 for a kill a supervisor answers. */
  holdMs: number;
}

/** What happened to one fault. */
export interface FaultResult extends PlannedFault {
  /** When the system noticed (the gateway took the API server out, the workers found the worker gone, Sentinel promoted a replica), ms after the strike. */
  detectedMs?: number;
  /** When the struck part was back (healthy again, or replaced), ms after the strike. */
  recoveredMs?: number;
  /** How long the client saw failures: the end of the last second with a failed request after the strike (before the next fault), ms after it; 0 when none failed. */
  clientRecoveredMs?: number;
  /** Redis faults: data servers that claimed the primary role once it recovered (1 is right: no split brain). */
  primaries?: number;
  /** Acknowledged jobs sent from the strike to the end of its window (recovery + 2 s) that were lost. */
  lost?: number;
  /** What the fault did, in words. */
  note: string;
}

/** One second of load, at the client. */
export interface Second {
  second: number;
  sent: number;
  ok: number;
  /** 5xx answers, timeouts and connection errors. */
  failed: number;
  /** 4xx answers (the client's own doing; neither success nor failure of the system). */
  refused: number;
  /** Successful answers' mean harvest (1: complete). */
  harvest: number;
  p50: number;
  p99: number;
  /** Faults active during this second. */
  faults: string[];
}

/** The invariants checked after the drain. */
export interface Invariants {
  /** Jobs the client was told were accepted (202) or done (200). */
  acknowledged: number;
  /** Acknowledged jobs with no ledger entry after the drain. */
  lost: string[];
  /** What the queue still says of each lost job (`status` of `result()`, or `unknown`). */
  lostStates?: Record<string, string>;
  /** Jobs with more than one ledger entry. */
  finishedTwice: string[];
  /** Acknowledged jobs by final outcome. */
  outcomes: Record<string, number>;
  /** Every job of the ledger in the run's range, and the usage checker's report. */
  usage: Pick<VerifyReport, 'jobs' | 'ok'> & { discrepancies: number; report: string };
  /** Resident set size of each service before and after the run, bytes. */
  memory: Array<{ service: string; beforeBytes: number | undefined; afterBytes: number | undefined }>;
  /** The bound every service must stay under, bytes. */
  memoryBoundBytes: number;
  /** Services above it. */
  overBound: string[];
  /** Why the checks could not finish, if they could not (then `ok` is false). */
  error?: string;
  ok: boolean;
}

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  /** Seed of the fault schedule and the request mix. @default 1 */
  seed?: number;
  /** How long the load runs, ms. @default 600000 */
  durationMs?: number;
  /** Share of measured capacity to send. @default 0.5 */
  share?: number;
  /** Capacity in requests/s; measured (closed loop, `capacityMs`) when not given. */
  capacityPerSec?: number;
  /** How long capacity is measured, ms. @default 15000 */
  capacityMs?: number;
  /**
   * Faults to strike, evenly spread over the run in a seeded order. `partition-redis-primary`
   * needs root, `ip netns` and iptables (the Redis servers then run in network namespaces).
   * @default every kind once
   */
  faults?: readonly FaultKind[];
  /** Client timeout of one request, ms (counted as a failure). @default 10000 */
  timeoutMs?: number;
  /** Memory bound of every service, bytes. @default 512 MiB */
  memoryBoundBytes?: number;
  /** An already launched deployment (left running); else one is launched and stopped. */
  topology?: LaunchedTopology;
  /** A directory the services' logs are copied to before the deployment stops (to read after a failed run). */
  keepLogsTo?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Everything a chaos run measured. */
export interface ChaosResult {
  seed: number;
  durationMs: number;
  share: number;
  capacityPerSec: number;
  ratePerSec: number;
  imageBytes: { mean: number; max: number; count: number };
  schedule: PlannedFault[];
  faults: FaultResult[];
  seconds: Second[];
  totals: { sent: number; ok: number; failed: number; refused: number; yield: number; p50: number; p99: number };
  /** Answers by HTTP status (`timeout`, `error`: no answer). */
  statuses: Record<string, number>;
  /** Every failed request: when it was sent (ms after the load started), its status, error code and request id. */
  failures: Array<{ atMs: number; latencyMs: number; status: string; code?: string; requestId?: string }>;
  /** The same over the seconds outside every fault window (strike to client recovery). */
  quiet: { seconds: number; yield: number; p99: number };
  /** p99 over every second except those around a Redis failover. */
  p99OutsideFailover: number;
  invariants: Invariants;
}

/**
 * The fault schedule of a run: `faults` in a seeded order, evenly spread over the middle
 * of the run (from 10% to 80% of it) with seeded jitter, each on a seeded target.
 */
export function faultSchedule(
  seed: number,
  durationMs: number,
  faults: readonly FaultKind[],
  counts = { apis: 3, workers: 2 },
): PlannedFault[] {
  for (const f of faults) if (!FAULT_KINDS.includes(f)) throw new InvalidOptionError('faults', FAULT_KINDS.join(', '), f);
  const random = seededRandom(seed);
  const order = [...faults];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as FaultKind, order[i] as FaultKind];
  }
  const start = durationMs * 0.1;
  const slot = (durationMs * 0.7) / Math.max(1, order.length);
  return order.map((kind, i) => {
    const atMs = Math.round(start + slot * i + random() * slot * 0.3);
    const pick = (n: number): number => 1 + Math.floor(random() * n);
    const target =
      kind.endsWith('-api') || kind === 'slow-upstream'
        ? `api-${pick(counts.apis)}`
        : kind.endsWith('-worker')
          ? `worker-${pick(counts.workers)}`
          : kind.endsWith('-redis-primary')
            ? 'redis-primary'
            : kind.endsWith('-postgres')
              ? 'postgres'
              : 'identity';
    return { kind, atMs, target, holdMs: HOLD_MS[kind] ?? 0 };
  });
}

/** How long each fault lasts, ms: a pause until SIGCONT, an outage until the restart, a partition until healed (Sentinel's down-after is 1 s). */
const HOLD_MS: Partial<Record<FaultKind, number>> = {
  'stop-api': 5000,
  'stop-worker': 5000,
  'stop-identity': 5000,
  'stop-redis-primary': 4000,
  'partition-redis-primary': 6000,
  'slow-upstream': 8000,
  'kill-postgres': 5000,
};

/** The printable form of a schedule (one line per fault). */
export function formatSchedule(seed: number, schedule: readonly PlannedFault[]): string {
  return [
    `fault schedule (seed ${seed}; replay with --seed=${seed}):`,
    ...schedule.map(
      (f) =>
        `  t=${(f.atMs / 1000).toFixed(1).padStart(6)} s  ${f.kind.padEnd(19)} ${f.target}${f.holdMs ? ` for ${f.holdMs / 1000} s` : ''}`,
    ),
  ].join('\n');
}

/** Runs a chaos run (see the module comment); launches the deployment unless one is given. */
export async function runChaos(options: ChaosOptions = {}): Promise<ChaosResult> {
  const seed = integer('seed', options.seed ?? 1, { min: 0 });
  const durationMs = integer('durationMs', options.durationMs ?? 600_000, { min: 5000 });
  const share = options.share ?? 0.5;
  if (!(share > 0 && share <= 2)) throw new InvalidOptionError('share', 'a share of capacity in (0, 2]', share);
  const log = options.log ?? (() => {});
  const faults = options.faults ?? FAULT_KINDS;
  const partitionable = faults.includes('partition-redis-primary');
  if (partitionable && options.topology && !options.topology.redisNetwork) {
    throw new InvalidOptionError(
      'faults',
      "without 'partition-redis-primary' on a topology launched without `partitionable: true`",
      faults,
    );
  }
  const topology = options.topology ?? (await launchDistributed({ partitionable, onProgress: (l) => log(`  up: ${l}`) }));
  try {
    const workers = topology.specs.filter((s) => s.kind === 'worker').length;
    const apis = topology.specs.filter((s) => s.kind === 'api').length;
    const schedule = faultSchedule(seed, durationMs, faults, { apis, workers });
    log(formatSchedule(seed, schedule));
    const keys = await tenants(topology, 3);
    const images = await imageSet();
    const client = new Client(topology.url, keys, images, seededRandom(seed ^ 0x5eed), options.timeoutMs ?? 10_000);
    await client.warm();
    const capacityPerSec = options.capacityPerSec ?? (await client.capacity(options.capacityMs ?? 15_000));
    await settle(topology.ops, log);
    const ratePerSec = Math.max(1, capacityPerSec * share);
    log(
      `capacity ${capacityPerSec.toFixed(1)} requests/s; sending ${ratePerSec.toFixed(1)}/s (${Math.round(share * 100)}%) for ${durationMs / 1000} s`,
    );
    const observer = new RedisQueue({
      connection: { sentinels: sentinelList(topology.sentinels), name: 'ballast' },
      minReplicas: 1,
      member: 'chaos-observer',
    });
    observer.consumer('observer'); // watches the members' heartbeats; never takes a job
    const memoryBefore = topology.services.map((s) => ({ service: s.name, beforeBytes: rssBytes(s.pid) }));
    const fromMs = Date.now();
    try {
      const injector = new Injector(topology, observer, log);
      const load = client.run(ratePerSec, durationMs);
      const struck = await injector.run(schedule, client.startedAt);
      await load;
      const seconds = client.seconds(struck);
      struck.forEach((f, i) => {
        f.clientRecoveredMs = clientRecovery(seconds, f, struck[i + 1]);
      });
      log('load finished; draining…');
      const invariants = await checkInvariants(topology, client, fromMs, memoryBefore, options.memoryBoundBytes ?? 512 * 1024 * 1024, log);
      for (const f of struck) {
        const [from, to] = faultWindow(f);
        f.lost = invariants.lost.filter((id) => {
          const at = client.acknowledged.get(id)?.atMs ?? -1;
          return at >= from && at < to;
        }).length;
      }
      return summarize({
        seed,
        durationMs,
        share,
        capacityPerSec,
        ratePerSec,
        images,
        samples: client.samples(),
        schedule,
        faults: struck,
        seconds,
        invariants,
      });
    } finally {
      await observer.close();
    }
  } finally {
    if (options.keepLogsTo) cpSync(join(topology.dir, 'logs'), options.keepLogsTo, { recursive: true });
    if (!options.topology) await topology.close();
  }
}

/**
 * Waits (at most 30 s) until the gateway's adaptive throttle turns nothing away: the
 * capacity measurement overloads the system on purpose, and the sheds it provoked would
 * otherwise have the gateway refuse the first seconds of the run's load.
 */
async function settle(ops: string, log: (line: string) => void): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const res = await fetch(`${ops}/gateway/stats`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    const stats = (await res?.json().catch(() => undefined)) as { throttle?: { probability: number } } | undefined;
    if (stats && !(stats.throttle && stats.throttle.probability > 0)) return;
    await sleep(500);
  }
  log('  the gateway still throttles 30 s after the capacity measurement');
}

function sentinelList(sentinels: string): Array<{ host: string; port: number }> {
  return sentinels.split(',').map((s) => {
    const [host, port] = s.split(':');
    return { host: host as string, port: Number(port) };
  });
}

/** Creates `n` tenants (enterprise plan: their quotas stay out of the way) and one key each; waits until the API servers know the keys. */
async function tenants(topology: LaunchedTopology, n: number): Promise<string[]> {
  const headers = { authorization: `Bearer ${topology.adminToken}`, 'content-type': 'application/json' };
  const keys: string[] = [];
  for (let i = 1; i <= n; i++) {
    const res = await fetch(`${topology.identityUrl}/v1/tenants`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: `chaos-${i}-${Date.now().toString(36)}`, plan: 'enterprise' }),
    });
    if (res.status !== 201) throw new Error(`creating a tenant answered ${res.status}: ${await res.text()}`);
    const tenant = (await res.json()) as { id: string };
    const issued = await fetch(`${topology.identityUrl}/v1/tenants/${tenant.id}/keys`, { method: 'POST', headers, body: '{}' });
    keys.push(((await issued.json()) as { key: string }).key);
  }
  return keys;
}

/** Images of the design's sizes (256 KB on average, all under 1 MB): the sample photo at three scales. */
async function imageSet(): Promise<Buffer[]> {
  const base = await sampleJpeg();
  const meta = await sharp(base).metadata();
  const width = meta.width ?? 1024;
  const images = [
    base,
    await sharp(base)
      .resize({ width: Math.round(width * 0.7) })
      .jpeg({ quality: 85 })
      .toBuffer(),
    await sharp(base)
      .resize({ width: Math.round(width * 1.2) })
      .jpeg({ quality: 85 })
      .toBuffer(),
  ];
  for (const image of images) if (image.length >= 1024 * 1024) throw new Error(`a test image is ${image.length} bytes, over 1 MB`);
  return images;
}

interface Sample {
  at: number;
  latencyMs: number;
  kind: 'ok' | 'failed' | 'refused';
  harvest: number;
  /** HTTP status, or `timeout` / `error`. */
  status: string;
  /** A failure's error code (`ERR_BALLAST_…` of the body, or the client's error name) and request id. */
  code?: string;
  requestId?: string;
}

/** The load generator: sync and async requests, several tenants, on an open-loop schedule. */
class Client {
  startedAt = 0;
  /** Acknowledged jobs: how, and when the request was sent (ms after the load started; -1 before). */
  readonly acknowledged = new Map<string, { mode: 'sync' | 'async'; atMs: number }>();
  readonly #samples: Sample[] = [];
  readonly #async: Array<{ id: string; key: string }> = [];
  readonly url: string;
  readonly keys: readonly string[];
  readonly images: readonly Buffer[];
  readonly random: () => number;
  readonly timeoutMs: number;
  constructor(url: string, keys: readonly string[], images: readonly Buffer[], random: () => number, timeoutMs: number) {
    this.url = url;
    this.keys = keys;
    this.images = images;
    this.random = random;
    this.timeoutMs = timeoutMs;
  }

  /** One request; the outcome as the client saw it. */
  async send(atMs = -1): Promise<Omit<Sample, 'at' | 'latencyMs'>> {
    const status = (s: number | string): string => String(s);
    const key = this.keys[Math.floor(this.random() * this.keys.length)] as string;
    const image = this.images[Math.floor(this.random() * this.images.length)] as Buffer;
    const async = this.random() < 0.25;
    const width = this.random() < 0.5 ? 400 : 800;
    const query = `width=${width}&format=${this.random() < 0.5 ? 'webp' : 'jpeg'}${async ? '&mode=async&deadlineMs=60000' : ''}`;
    try {
      const res = await fetch(`${this.url}/v1/resize?${query}`, {
        method: 'POST',
        body: image,
        headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${key}` },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const body = Buffer.from(await res.arrayBuffer());
      const id = res.headers.get('x-job-id');
      if (res.status === 200 && id) this.acknowledged.set(id, { mode: 'sync', atMs });
      if (res.status === 202) {
        const accepted = JSON.parse(body.toString()) as { id: string };
        this.acknowledged.set(accepted.id, { mode: 'async', atMs });
        this.#async.push({ id: accepted.id, key });
      }
      if (res.status >= 500) {
        const code = /"code":"([^"]+)"/.exec(body.toString('latin1', 0, 512))?.[1] ?? 'no-code';
        return { kind: 'failed', harvest: 0, status: status(res.status), code, requestId: res.headers.get('x-request-id') ?? undefined };
      }
      if (res.status >= 400) return { kind: 'refused', harvest: 0, status: status(res.status) };
      const harvest = Number(res.headers.get('x-ballast-harvest') ?? (res.headers.has('x-ballast-degraded') ? 0.5 : 1));
      return { kind: 'ok', harvest: Number.isFinite(harvest) ? harvest : 1, status: status(res.status) };
    } catch (error) {
      const name = (error as Error).name;
      return {
        kind: 'failed',
        harvest: 0,
        status: name === 'TimeoutError' ? 'timeout' : 'error',
        code: `${name}: ${(error as Error).message}`,
      };
    }
  }

  /** A few requests until one succeeds (the keys have reached every API server). */
  async warm(): Promise<void> {
    const deadline = Date.now() + 60_000;
    let ok = 0;
    while (ok < 6) {
      if (Date.now() > deadline) throw new Error('no request succeeded within 60 s of creating the tenants');
      if ((await this.send()).kind === 'ok') ok++;
      else await sleep(250);
    }
    this.acknowledged.clear();
    this.#async.length = 0;
  }

  /** Successful requests per second with 8 in flight, closed loop, over `ms`. */
  async capacity(ms: number): Promise<number> {
    const end = performance.now() + ms;
    let ok = 0;
    const loop = async (): Promise<void> => {
      while (performance.now() < end) if ((await this.send()).kind === 'ok') ok++;
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: 8 }, loop));
    return (ok * 1000) / (performance.now() - started);
  }

  /** Constant-rate open loop: latency counted from each request's scheduled time. */
  async run(ratePerSec: number, durationMs: number): Promise<void> {
    const interval = 1000 / ratePerSec;
    const pending = new Set<Promise<void>>();
    this.startedAt = performance.now();
    for (let i = 0; ; i++) {
      const at = i * interval;
      if (at >= durationMs) break;
      const wait = this.startedAt + at - performance.now();
      if (wait > 1) await sleep(wait);
      const p = this.send(at).then((outcome) => {
        this.#samples.push({ at, latencyMs: performance.now() - this.startedAt - at, ...outcome });
      });
      const tracked = p.finally(() => pending.delete(tracked));
      pending.add(tracked);
      if (pending.size > 2000) throw new Error('over 2000 requests outstanding: the system stopped answering');
    }
    await Promise.allSettled([...pending]);
  }

  /** Polls every async job until it has an answer (a result or a final error), within `timeoutMs`. */
  async drainAsync(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let open = [...this.#async];
    while (open.length > 0 && Date.now() < deadline) {
      const still: typeof open = [];
      for (const job of open) {
        const res = await fetch(`${this.url}/v1/jobs/${job.id}`, { headers: { authorization: `Bearer ${job.key}` } }).catch(
          () => undefined,
        );
        await res?.arrayBuffer();
        if (!res || res.status === 202 || res.status >= 500) still.push(job);
      }
      open = still;
      if (open.length > 0) await sleep(1000);
    }
    return open.length;
  }

  /** Per-second figures, with the faults active in each second. */
  seconds(faults: readonly FaultResult[]): Second[] {
    const buckets = new Map<number, Sample[]>();
    for (const s of this.#samples) {
      const k = Math.floor(s.at / 1000);
      const list = buckets.get(k) ?? [];
      list.push(s);
      buckets.set(k, list);
    }
    const last = Math.max(-1, ...buckets.keys());
    const out: Second[] = [];
    for (let second = 0; second <= last; second++) {
      const list = buckets.get(second) ?? [];
      const ok = list.filter((s) => s.kind === 'ok');
      const latencies = list
        .filter((s) => s.kind !== 'refused')
        .map((s) => s.latencyMs)
        .sort((a, b) => a - b);
      out.push({
        second,
        sent: list.length,
        ok: ok.length,
        failed: list.filter((s) => s.kind === 'failed').length,
        refused: list.filter((s) => s.kind === 'refused').length,
        harvest: ok.length ? ok.reduce((a, s) => a + s.harvest, 0) / ok.length : 1,
        p50: quantile(latencies, 0.5),
        p99: quantile(latencies, 0.99),
        faults: faults
          .filter((f) => f.atMs < (second + 1) * 1000 && f.atMs + Math.max(f.holdMs, 1000) > second * 1000)
          .map((f) => `${f.kind} ${f.target}`),
      });
    }
    return out;
  }

  samples(): readonly Sample[] {
    return this.#samples;
  }
}

/** The nearest-rank quantile of `sorted`, 0 for none. */
function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0 ? 0 : nearestRank(sorted, q);
}

/**
 * How long the client saw failures after the strike: the end of the last second with a
 * failed request before the next fault (at most 60 s on), ms after the strike; 0 when none failed.
 */
function clientRecovery(seconds: readonly Second[], fault: FaultResult, next: FaultResult | undefined): number {
  const from = Math.floor(fault.atMs / 1000);
  const to = Math.min(from + 60, next ? Math.floor(next.atMs / 1000) : Number.POSITIVE_INFINITY);
  let last: number | undefined;
  for (const s of seconds) if (s.second >= from && s.second < to && s.failed > 0) last = s.second;
  return last === undefined ? 0 : Math.max(0, (last + 1) * 1000 - fault.atMs);
}

/** The window of a fault, ms after the load started: from the strike to 2 s after the client saw its last failure (or after the fault's recovery, or its hold). */
function faultWindow(f: FaultResult): readonly [number, number] {
  return [f.atMs, f.atMs + Math.max(f.holdMs, f.clientRecoveredMs ?? f.recoveredMs ?? 0) + 2000];
}

/** Strikes the faults of a schedule and measures detection and recovery. */
class Injector {
  readonly topology: LaunchedTopology;
  readonly observer: RedisQueue;
  readonly log: (line: string) => void;
  constructor(topology: LaunchedTopology, observer: RedisQueue, log: (line: string) => void) {
    this.topology = topology;
    this.observer = observer;
    this.log = log;
  }

  async run(schedule: readonly PlannedFault[], startedAt: number): Promise<FaultResult[]> {
    const results: FaultResult[] = [];
    for (const fault of schedule) {
      const wait = startedAt + fault.atMs - performance.now();
      if (wait > 0) await sleep(wait);
      const result = await this.strike(fault, performance.now() - startedAt);
      this.log(`  ${fault.kind} ${fault.target}: detected ${ms(result.detectedMs)}, recovered ${ms(result.recoveredMs)} (${result.note})`);
      results.push(result);
    }
    return results;
  }

  async strike(fault: PlannedFault, atMs: number): Promise<FaultResult> {
    const t0 = performance.now();
    const since = (): number => Math.round(performance.now() - t0);
    const result: FaultResult = { ...fault, atMs: Math.round(atMs), note: '' };
    const { topology } = this;
    switch (fault.kind) {
      case 'kill-api':
      case 'stop-api':
      case 'slow-upstream': {
        const api = topology.service(fault.target);
        if (fault.kind !== 'slow-upstream') result.note = strike(api, fault.kind === 'kill-api', fault.holdMs);
        else {
          void dutyCycle(api.pid, fault.holdMs);
          result.note = `paused 150 ms of every 300 ms for ${fault.holdMs / 1000} s: slow answers`;
        }
        // A slow server may never leave the rotation: watch for it only while it is slow.
        const watchMs = fault.kind === 'slow-upstream' ? fault.holdMs : 15_000;
        result.detectedMs = await this.until(() => this.upstreamDown(fault.target), watchMs, since);
        if (fault.kind !== 'kill-api') await sleep(Math.max(0, fault.holdMs - since()));
        result.recoveredMs = await this.until(async () => !(await this.upstreamDown(fault.target)) && api.running, 60_000, since);
        break;
      }
      case 'kill-worker':
      case 'stop-worker': {
        const worker = topology.service(fault.target);
        result.note = strike(worker, fault.kind === 'kill-worker', fault.holdMs);
        result.detectedMs = await this.until(async () => this.observer.membership().gone.includes(fault.target), 15_000, since);
        await sleep(Math.max(0, fault.holdMs - since()));
        result.recoveredMs = await this.until(
          async () => this.observer.membership().alive.includes(fault.target) && worker.running,
          60_000,
          since,
        );
        break;
      }
      case 'kill-redis-primary':
      case 'stop-redis-primary':
      case 'partition-redis-primary':
        await this.redisFault(fault, result, since);
        break;
      case 'kill-postgres': {
        await topology.postgres.crash();
        await sleep(fault.holdMs);
        await topology.postgres.restart();
        result.recoveredMs = since();
        result.note = `SIGKILL of every PostgreSQL process, restarted ${fault.holdMs / 1000} s later`;
        break;
      }
      case 'kill-identity':
      case 'stop-identity': {
        const identity = topology.service('identity');
        result.note = strike(identity, fault.kind === 'kill-identity', fault.holdMs, ' (the API servers keep their edge cache)');
        await sleep(Math.max(0, fault.holdMs - since()));
        result.recoveredMs = await this.until(
          async () => (await fetch(`${topology.identityUrl}/readyz`, { signal: AbortSignal.timeout(1000) })).ok,
          60_000,
          since,
        );
        break;
      }
    }
    return result;
  }

  /**
   * A fault of the Redis primary — SIGKILL (restarted once a replica is promoted), SIGSTOP
   * for `holdMs`, or cut off from the replicas, the Sentinels and every client for
   * `holdMs` — detected when Sentinel names another primary, recovered when the old
   * primary serves again as a replica of the new one; then no other server may still
   * claim the primary role.
   */
  async redisFault(fault: PlannedFault, result: FaultResult, since: () => number): Promise<void> {
    const { redis, redisNetwork } = this.topology;
    const before = await redis.currentPrimary();
    const primary = redis.processes.find((p) => p.host === before.host && p.port === before.port && p.role !== 'sentinel');
    if (!primary) throw new Error(`no Redis process at the primary's address ${before.host}:${before.port}`);
    if (fault.kind === 'kill-redis-primary') {
      await primary.crash();
      result.note = `SIGKILL of ${primary.url}; restarted once a replica is promoted (it rejoins as a replica)`;
    } else if (fault.kind === 'stop-redis-primary') {
      process.kill(primary.pid, 'SIGSTOP');
      setTimeout(() => resume(primary.pid), fault.holdMs);
      result.note = `SIGSTOP of ${primary.url}, SIGCONT ${fault.holdMs / 1000} s later`;
    } else {
      if (!redisNetwork) throw new Error('the partition fault needs a deployment launched with `partitionable: true`');
      await redisNetwork.isolate(primary.host);
      result.note = `${primary.url} cut off from the replicas, the Sentinels and every client until a replica is promoted and at least ${fault.holdMs / 1000} s, then healed`;
    }
    result.detectedMs = await this.until(async () => (await redis.currentPrimary()).port !== before.port, 60_000, since);
    if (fault.kind === 'kill-redis-primary') await primary.restart();
    await sleep(Math.max(0, fault.holdMs - since()));
    if (fault.kind === 'partition-redis-primary') await redisNetwork?.net.heal();
    result.recoveredMs = await this.until(async () => (await roleOf(primary)) === 'slave', 60_000, since);
    // Sentinel turns a returning old primary into a replica some seconds after it is back
    // (until then it claims the role, refusing writes: it hears from no replica). Two
    // primaries 30 s after the recovery would be a split brain.
    const data = redis.processes.filter((p) => p.role !== 'sentinel');
    const primaries = async (): Promise<number> => (await Promise.all(data.map(roleOf))).filter((r) => r === 'master').length;
    await this.until(async () => (await primaries()) === 1, 30_000, since);
    result.primaries = await primaries();
  }

  /** True while the gateway has `id` out of rotation. */
  async upstreamDown(id: string): Promise<boolean> {
    const res = await fetch(`${this.topology.ops}/gateway/stats`, { signal: AbortSignal.timeout(1000) });
    const stats = (await res.json()) as { balancer: { endpoints: Array<{ id: string; state: string }> } };
    const state = stats.balancer.endpoints.find((e) => e.id === id)?.state;
    return state !== 'healthy' && state !== 'warming';
  }

  /** Polls `check` every 50 ms; the ms since the strike when it first held, or undefined after `timeoutMs`. */
  async until(check: () => Promise<boolean>, timeoutMs: number, since: () => number): Promise<number | undefined> {
    const end = performance.now() + timeoutMs;
    while (performance.now() < end) {
      if (await check().catch(() => false)) return since();
      await sleep(50);
    }
    return undefined;
  }
}

/**
 * Strikes a supervised service: `SIGKILL` (its supervisor restarts it) or `SIGSTOP` with
 * `SIGCONT` `holdMs` later. Returns the fault's note.
 */
function strike(service: { signal(signal: NodeJS.Signals): void }, kill: boolean, holdMs: number, more = ''): string {
  if (kill) {
    service.signal('SIGKILL');
    return `SIGKILL; the supervisor restarts it${more}`;
  }
  service.signal('SIGSTOP');
  setTimeout(() => service.signal('SIGCONT'), holdMs);
  return `SIGSTOP, SIGCONT ${holdMs / 1000} s later`;
}

/** Pauses `pid` for 150 ms of every 300 ms, for `ms`: a server that answers, slowly. */
async function dutyCycle(pid: number, ms: number): Promise<void> {
  const end = performance.now() + ms;
  try {
    while (performance.now() < end) {
      process.kill(pid, 'SIGSTOP');
      await sleep(150);
      process.kill(pid, 'SIGCONT');
      await sleep(150);
    }
  } catch {
    // The process is gone.
  } finally {
    resume(pid);
  }
}

/** `SIGCONT` to `pid`, unless it is gone already (the deployment may stop before a pause ends). */
function resume(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // No such process.
  }
}

/** The replication role a Redis server reports (`master`, `slave`), or `down`. */
async function roleOf(server: { host: string; port: number }): Promise<string> {
  const info = await command(server.port, ['INFO', 'replication'], server.host).catch(() => '');
  return /role:(\w+)/.exec(info)?.[1] ?? 'down';
}

/** `fn`, tried again (up to 5 times, a second apart) when it throws. */
async function retry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= 5) throw error;
      await sleep(1000);
    }
  }
}

const ms = (v: number | undefined): string => (v === undefined ? '—' : `${(v / 1000).toFixed(2)} s`);

/** Drains the system and checks the invariants. */
async function checkInvariants(
  topology: LaunchedTopology,
  client: Client,
  fromMs: number,
  memoryBefore: Array<{ service: string; beforeBytes: number | undefined }>,
  memoryBoundBytes: number,
  log: (line: string) => void,
): Promise<Invariants> {
  // A queue handle of its own: one that lived through the faults may have given up its connection.
  const queue = new RedisQueue({ connection: { sentinels: sentinelList(topology.sentinels), name: 'ballast' }, minReplicas: 1 });
  try {
    return await drainAndCheck(topology, queue, client, fromMs, memoryBefore, memoryBoundBytes, log);
  } catch (error) {
    // The run's figures are kept; the invariants are reported as not checked.
    log(`  the checks after the drain failed: ${String(error)}`);
    return {
      acknowledged: client.acknowledged.size,
      lost: [],
      finishedTwice: [],
      outcomes: {},
      usage: { jobs: 0, ok: false, discrepancies: 0, report: '' },
      memory: memoryBefore.map((m) => ({ ...m, afterBytes: undefined })),
      memoryBoundBytes,
      overBound: [],
      error: String(error),
      ok: false,
    };
  } finally {
    await queue.close();
  }
}

async function drainAndCheck(
  topology: LaunchedTopology,
  queue: RedisQueue,
  client: Client,
  fromMs: number,
  memoryBefore: Array<{ service: string; beforeBytes: number | undefined }>,
  memoryBoundBytes: number,
  log: (line: string) => void,
): Promise<Invariants> {
  const left = await client.drainAsync(180_000);
  if (left > 0) log(`  ${left} async jobs still without an answer after 180 s`);
  // No job left running, every acknowledged job in the ledger, every usage record shipped.
  const { toMs } = await settleForChecks({
    queue,
    acknowledged: client.acknowledged.keys(),
    usageRoot: join(topology.dir, 'usage'),
    fromMs,
    log,
  });
  const entries = new Map<string, Array<{ outcome: string }>>();
  const readLedger = async (): Promise<void> => {
    entries.clear();
    for await (const e of queue.ledger(Math.max(0, fromMs - 60_000), Date.now() + 60_000)) {
      const list = entries.get(e.jobId) ?? [];
      list.push({ outcome: e.outcome });
      entries.set(e.jobId, list);
    }
  };
  const store = await UsageStore.open({ database: topology.usageDatabaseUrl });
  try {
    const billingDir = join(topology.dir, 'billing');
    const cold = new ColdStorage(join(topology.dir, 'cold'));
    mkdirSync(billingDir, { recursive: true });
    const periods = new Set([new Date(fromMs).toISOString().slice(0, 10), new Date(toMs).toISOString().slice(0, 10)]);
    for (const period of periods) {
      await runBilling(period, {
        store,
        cold,
        outDir: billingDir,
        closeAfterMs: 0,
        now: () => Date.parse(`${period}T00:00:00Z`) + 86_400_000,
      });
    }
    const report = await retry(() => verifyUsage({ ledger: queue, store, cold, billingDir, fromMs: Math.max(0, fromMs - 60_000), toMs }));
    await retry(readLedger); // the entries the checks below use, read whole
    const lost = [...client.acknowledged.keys()].filter((id) => !entries.has(id));
    const lostStates: Record<string, string> = {};
    for (const id of lost) lostStates[id] = (await queue.result(id).catch(() => undefined))?.status ?? 'unknown';
    const finishedTwice = [...entries].filter(([, l]) => l.length > 1).map(([id]) => id);
    const outcomes: Record<string, number> = {};
    for (const id of client.acknowledged.keys()) {
      const outcome = entries.get(id)?.[0]?.outcome ?? 'lost';
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
    const memory = memoryBefore.map((m) => {
      const service = topology.service(m.service);
      return { ...m, afterBytes: rssBytes(service.pid) };
    });
    const overBound = memory.filter((m) => (m.afterBytes ?? 0) > memoryBoundBytes).map((m) => m.service);
    return {
      acknowledged: client.acknowledged.size,
      lost,
      lostStates,
      finishedTwice,
      outcomes,
      usage: { jobs: report.jobs, ok: report.ok, discrepancies: report.discrepancies.length, report: formatReport(report) },
      memory,
      memoryBoundBytes,
      overBound,
      ok: lost.length === 0 && finishedTwice.length === 0 && report.ok && overBound.length === 0,
    };
  } finally {
    await store.close();
  }
}

function summarize(
  r: Omit<ChaosResult, 'totals' | 'quiet' | 'p99OutsideFailover' | 'imageBytes' | 'statuses' | 'failures'> & {
    images: Buffer[];
    samples: readonly Sample[];
  },
): ChaosResult {
  const { images, samples, ...rest } = r;
  const seconds = r.seconds;
  const sum = (list: readonly Second[], k: 'sent' | 'ok' | 'failed' | 'refused'): number => list.reduce((a, s) => a + s[k], 0);
  const yieldOf = (list: readonly Second[]): number => {
    const ok = sum(list, 'ok');
    const failed = sum(list, 'failed');
    return ok + failed === 0 ? 1 : ok / (ok + failed);
  };
  const windows = r.faults.map(faultWindow);
  const inWindow = (s: Second, w: ReadonlyArray<readonly [number, number]>): boolean =>
    w.some(([a, b]) => s.second * 1000 < b && (s.second + 1) * 1000 > a);
  const quietSeconds = seconds.filter((s) => !inWindow(s, windows));
  const failover = r.faults
    .filter((f) => f.kind.endsWith('redis-primary'))
    .map((f) => [f.atMs - 1000, f.atMs + Math.max(f.holdMs, f.recoveredMs ?? 0) + 5000] as const);
  // Latency of answered requests (refusals aside), timeouts included at their full wait.
  const quantileOf = (list: readonly Second[], q: number): number => {
    const keep = new Set(list.map((s) => s.second));
    const latencies = samples.filter((x) => x.kind !== 'refused' && keep.has(Math.floor(x.at / 1000))).map((x) => x.latencyMs);
    return quantile(
      latencies.sort((a, b) => a - b),
      q,
    );
  };
  const statuses: Record<string, number> = {};
  for (const x of samples) statuses[x.status] = (statuses[x.status] ?? 0) + 1;
  return {
    ...rest,
    statuses,
    failures: samples
      .filter((x) => x.kind === 'failed')
      .map((x) => ({ atMs: Math.round(x.at), latencyMs: Math.round(x.latencyMs), status: x.status, code: x.code, requestId: x.requestId })),
    imageBytes: {
      mean: Math.round(images.reduce((a, b) => a + b.length, 0) / images.length),
      max: Math.max(...images.map((i) => i.length)),
      count: images.length,
    },
    totals: {
      sent: sum(seconds, 'sent'),
      ok: sum(seconds, 'ok'),
      failed: sum(seconds, 'failed'),
      refused: sum(seconds, 'refused'),
      yield: yieldOf(seconds),
      p50: quantileOf(seconds, 0.5),
      p99: quantileOf(seconds, 0.99),
    },
    quiet: { seconds: quietSeconds.length, yield: yieldOf(quietSeconds), p99: quantileOf(quietSeconds, 0.99) },
    p99OutsideFailover: quantileOf(
      seconds.filter((s) => !inWindow(s, failover)),
      0.99,
    ),
  };
}
