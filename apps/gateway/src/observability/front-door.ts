import type { Stage } from '@ballast/app-shared';
import { integer, Histogram as Percentiles } from '@ballast/common';
import { Counter, Histogram, type Registry } from 'prom-client';
import { OUTCOMES, type Outcome, type Route, type SizeClass } from './classify.ts';
import { TenantLabels } from './tenants.ts';

/** Buckets of the front door's latency and stage histograms, seconds: 5 ms to 60 s (image work). */
export const IMAGE_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30, 60];

/** One request as the front door saw it, once its answer was sent. */
export interface FrontDoorRecord {
  requestId: string;
  /** When it arrived, epoch ms. */
  at: number;
  method: string;
  path: string;
  route: Route;
  status: number;
  outcome: Outcome;
  /** The tenant the API server named (`anonymous` when none). */
  tenant: string;
  size: SizeClass;
  /** The API server that answered, if one did. */
  upstream?: string;
  /** From arrival to the last byte sent, ms. */
  durationMs: number;
  /** Share of the data asked for that the answer holds (resize answers only). */
  harvest?: number;
  /** Time in each stage, ms (stages the request did not reach are absent). */
  stages: Partial<Record<Stage, number>>;
}

/** One request's path through the system, stage after stage: what `/trace/:id` answers. */
export interface Timeline {
  requestId: string;
  at: string;
  method: string;
  path: string;
  status: number;
  outcome: Outcome;
  tenant: string;
  upstream?: string;
  totalMs: number;
  /** The stages laid end to end in the order a request crosses them (`startMs` from arrival). */
  stages: Array<{ stage: Stage; startMs: number; durationMs: number }>;
}

/** What the dashboard plots, over the last `windowSeconds`. */
export interface LiveWindow {
  /** Requests answered per second (every route). */
  rps: number;
  /** Resize requests shed (503 + Retry-After) per second. */
  shedPerSec: number;
  /** Share of valid resize requests served; null with none. */
  yield: number | null;
  /** Latency of successful resize requests, ms; null with none. */
  p50: number | null;
  p99: number | null;
  p999: number | null;
  /** Mean harvest of resize answers; null with none. */
  harvest: number | null;
  /** Requests in the window, by outcome. */
  outcomes: Record<Outcome, number>;
}

/** Options of {@link FrontDoor}. */
export interface FrontDoorOptions {
  /** Registry of the `ballast_frontdoor_*` and `ballast_request_span_duration_seconds` metrics. */
  registry: Registry;
  /** Tenants with a label of their own on `ballast_frontdoor_requests_total`; the rest are `other`. @default 20 */
  maxTenants?: number;
  /** Window of the live figures (dashboard), seconds. @default 10 */
  windowSeconds?: number;
  /** Recent request timelines kept for `/trace/:id`. @default 2000 */
  traces?: number;
  /** Clock, epoch ms. @default Date.now */
  now?: () => number;
}

/** One second of live figures. */
interface Slot {
  second: number;
  outcomes: Record<Outcome, number>;
  all: number;
  latency: Percentiles;
  harvestSum: number;
  harvestCount: number;
}

const STAGE_ORDER: readonly Stage[] = ['gateway', 'admission', 'enqueue', 'queue_wait', 'conversion', 'response'];

/**
 * The front door's service-level indicators, recorded once per answered request:
 *
 * - `ballast_frontdoor_requests_total{route,outcome,tenant}`: yield over any window is
 *   `success / (all − client_error)` on `route="resize"`;
 * - `ballast_frontdoor_request_duration_seconds{route,outcome,size}`: arrival to last
 *   byte, {@link IMAGE_BUCKETS}; `size` splits images under 1 MB (the latency SLO) from larger ones;
 * - `ballast_frontdoor_harvest_ratio`: harvest of each resize answer (1 until answers can be partial);
 * - `ballast_request_span_duration_seconds{span}`: time in each stage (`gateway`,
 *   `admission`, `enqueue`, `queue_wait`, `conversion`, `response`).
 *
 * It also keeps one-second slots of the same figures for the live dashboard, and the
 * timelines of the most recent requests by request id.
 */
export class FrontDoor {
  readonly windowSeconds: number;
  readonly #now: () => number;
  readonly #tenants: TenantLabels;
  readonly #requests: Counter<'route' | 'outcome' | 'tenant'>;
  readonly #duration: Histogram<'route' | 'outcome' | 'size'>;
  readonly #harvest: Histogram;
  readonly #spans: Histogram<'span'>;
  readonly #slots: Slot[];
  readonly #traces = new Map<string, Timeline>();
  readonly #maxTraces: number;
  readonly #registry: Registry;

  constructor(options: FrontDoorOptions) {
    this.windowSeconds = integer('windowSeconds', options.windowSeconds ?? 10, { min: 1, max: 300 });
    this.#maxTraces = integer('traces', options.traces ?? 2000, { min: 0, max: 1_000_000 });
    this.#tenants = new TenantLabels(options.maxTenants);
    this.#now = options.now ?? Date.now;
    this.#registry = options.registry;
    const registers = [options.registry];
    this.#requests = new Counter({
      name: 'ballast_frontdoor_requests_total',
      help: 'Requests answered at the front door, by route, outcome (success, client_error, shed, timeout, upstream_failure) and tenant',
      labelNames: ['route', 'outcome', 'tenant'],
      registers,
    });
    this.#duration = new Histogram({
      name: 'ballast_frontdoor_request_duration_seconds',
      help: 'Front-door latency, arrival to last byte sent, by route, outcome and image size (under_1mb, 1mb_and_over, none, unknown)',
      labelNames: ['route', 'outcome', 'size'],
      buckets: [...IMAGE_BUCKETS],
      registers,
    });
    this.#harvest = new Histogram({
      name: 'ballast_frontdoor_harvest_ratio',
      help: 'Harvest of each resize answer: the share of the data asked for that it holds',
      buckets: [0.25, 0.5, 0.75, 0.9, 0.99, 1],
      registers,
    });
    this.#spans = new Histogram({
      name: 'ballast_request_span_duration_seconds',
      help: 'Time a request spends in each stage (gateway, admission, enqueue, queue_wait, conversion, response)',
      labelNames: ['span'],
      buckets: [...IMAGE_BUCKETS],
      registers,
    });
    this.#slots = Array.from({ length: this.windowSeconds + 1 }, () => ({
      second: -1,
      outcomes: zeroOutcomes(),
      all: 0,
      latency: new Percentiles(),
      harvestSum: 0,
      harvestCount: 0,
    }));
  }

  /** Records one answered request in the metrics, the live window and the recent timelines. */
  record(r: FrontDoorRecord): void {
    const seconds = r.durationMs / 1000;
    this.#requests.inc({ route: r.route, outcome: r.outcome, tenant: this.#tenants.label(r.tenant) });
    this.#duration.observe({ route: r.route, outcome: r.outcome, size: r.size }, seconds);
    if (r.harvest !== undefined) this.#harvest.observe(r.harvest);
    for (const stage of STAGE_ORDER) {
      const ms = r.stages[stage];
      if (ms !== undefined) this.#spans.observe({ span: stage }, ms / 1000);
    }
    const slot = this.#slot(Math.floor(this.#now() / 1000));
    slot.all++;
    if (r.route === 'resize') {
      slot.outcomes[r.outcome]++;
      if (r.outcome === 'success') slot.latency.record(r.durationMs);
      if (r.harvest !== undefined) {
        slot.harvestSum += r.harvest;
        slot.harvestCount++;
      }
    }
    if (this.#maxTraces > 0) this.#keepTrace(r);
  }

  /** The live figures over the last `windowSeconds` (the current, incomplete second left out). */
  live(): LiveWindow {
    const current = Math.floor(this.#now() / 1000);
    const outcomes = zeroOutcomes();
    const latency = new Percentiles();
    let all = 0;
    let harvestSum = 0;
    let harvestCount = 0;
    for (const slot of this.#slots) {
      if (slot.second < current - this.windowSeconds || slot.second >= current) continue;
      all += slot.all;
      for (const o of OUTCOMES) outcomes[o] += slot.outcomes[o];
      latency.merge(slot.latency);
      harvestSum += slot.harvestSum;
      harvestCount += slot.harvestCount;
    }
    const valid = OUTCOMES.reduce((n, o) => n + (o === 'client_error' ? 0 : outcomes[o]), 0);
    const pct = (p: number): number | null => (latency.count === 0 ? null : latency.percentile(p));
    return {
      rps: all / this.windowSeconds,
      shedPerSec: outcomes.shed / this.windowSeconds,
      yield: valid === 0 ? null : outcomes.success / valid,
      p50: pct(50),
      p99: pct(99),
      p999: pct(99.9),
      harvest: harvestCount === 0 ? null : harvestSum / harvestCount,
      outcomes,
    };
  }

  /** The timeline of a recent request, by request id (the most recent with that id). */
  trace(requestId: string): Timeline | undefined {
    return this.#traces.get(requestId);
  }

  /** Removes the metrics from the registry and forgets the live figures and timelines. */
  close(): void {
    for (const name of [
      'ballast_frontdoor_requests_total',
      'ballast_frontdoor_request_duration_seconds',
      'ballast_frontdoor_harvest_ratio',
      'ballast_request_span_duration_seconds',
    ]) {
      this.#registry.removeSingleMetric(name);
    }
    this.#traces.clear();
  }

  #slot(second: number): Slot {
    const slot = this.#slots[second % this.#slots.length] as Slot;
    if (slot.second !== second) {
      slot.second = second;
      slot.outcomes = zeroOutcomes();
      slot.all = 0;
      slot.latency.reset();
      slot.harvestSum = 0;
      slot.harvestCount = 0;
    }
    return slot;
  }

  #keepTrace(r: FrontDoorRecord): void {
    let startMs = 0;
    const stages: Timeline['stages'] = [];
    for (const stage of STAGE_ORDER) {
      const ms = r.stages[stage];
      if (ms === undefined) continue;
      stages.push({ stage, startMs: round(startMs), durationMs: round(ms) });
      startMs += ms;
    }
    const timeline: Timeline = {
      requestId: r.requestId,
      at: new Date(r.at).toISOString(),
      method: r.method,
      path: r.path,
      status: r.status,
      outcome: r.outcome,
      tenant: r.tenant,
      totalMs: round(r.durationMs),
      stages,
    };
    if (r.upstream !== undefined) timeline.upstream = r.upstream;
    this.#traces.delete(r.requestId);
    this.#traces.set(r.requestId, timeline);
    if (this.#traces.size > this.#maxTraces) this.#traces.delete(this.#traces.keys().next().value as string);
  }
}

function zeroOutcomes(): Record<Outcome, number> {
  return { success: 0, client_error: 0, shed: 0, timeout: 0, upstream_failure: 0 };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
