import {
  type Clock,
  durationMs,
  Emitter,
  finiteNumber,
  func,
  InvalidOptionError,
  type Listener,
  type Unsubscribe,
  withoutStack,
} from '@ballast/common';
import { EndpointRecord } from './endpoint-record.ts';
import { NoEndpointAvailableError, type NoEndpointReason } from './errors.ts';
import {
  type LoadBalancerOptions,
  type ResolvedOutlierDetection,
  type ResolvedSlowStart,
  resolveClock,
  resolveOutlierDetection,
  resolveSlowStart,
  resolveStrategy,
  toEndpoint,
  weight as validWeight,
} from './options.ts';
import { powerOfTwoChoices } from './strategies/p2c.ts';
import type {
  BalancingStrategy,
  DoneReport,
  Endpoint,
  EndpointHealth,
  EndpointInput,
  PickContext,
  PickHandle,
  PickOptions,
  PickOutcome,
} from './types.ts';

/** Why outlier detection ejected an endpoint. */
export type EjectionReason = 'consecutiveFailures' | 'failureRate';

/** Events of a {@link LoadBalancer}, named after the transition they report. */
export interface LoadBalancerEvents {
  /** An endpoint joined. */
  added: { endpoint: Endpoint };
  /** An endpoint left; `inFlight` requests on it are still accounted until they finish. */
  removed: { endpoint: Endpoint; inFlight: number };
  /** Outlier detection ejected an endpoint for `durationMs`. */
  ejected: { endpoint: Endpoint; reason: EjectionReason; durationMs: number; ejections: number };
  /** An ejected endpoint's ejection time ended. */
  restored: { endpoint: Endpoint };
  /** An external failure detector marked an endpoint down. */
  down: { endpoint: Endpoint; reason: string | undefined };
  /** An external failure detector marked an endpoint up again. */
  up: { endpoint: Endpoint };
  /** `drain()` began: the endpoint takes no new request. */
  draining: { endpoint: Endpoint };
  /** A draining endpoint's last in-flight request finished. */
  drained: { endpoint: Endpoint };
  /** Too few endpoints are healthy: the balancer now balances over all of them. */
  panic: { healthy: number; total: number };
  /** Enough endpoints are healthy again: panic mode ended. */
  panicEnd: { healthy: number; total: number };
}

/** A snapshot of one endpoint, from {@link LoadBalancer.stats}. */
export interface EndpointStats {
  id: string;
  address: string;
  weight: number;
  /** Weight after slow start (what share it takes right now). */
  effectiveWeight: number;
  state: EndpointHealth;
  inFlight: number;
  picks: number;
  successes: number;
  failures: number;
  cancelled: number;
  /** Time-decayed average latency, ms; `null` before the first sample. */
  latencyMs: number | null;
  /** Failures / requests over the error-rate window. */
  errorRate: number;
  /** Last reported load, `null` when none. */
  load: number | null;
  /** Times outlier detection ejected it. */
  ejections: number;
  /** Why it is down, when marked down with a reason. */
  downReason: string | null;
}

/** A snapshot of the balancer, from {@link LoadBalancer.stats}. */
export interface LoadBalancerStats {
  strategy: string;
  /** Endpoints held, draining ones included. */
  total: number;
  /** Endpoints neither draining, down nor ejected. */
  healthy: number;
  /** Endpoints `pick()` chooses from right now. */
  available: number;
  panic: boolean;
  inFlight: number;
  picks: number;
  /** `pick()` calls that threw {@link NoEndpointAvailableError}. */
  noEndpoint: number;
  endpoints: EndpointStats[];
}

type MutablePickContext = { -readonly [K in keyof PickContext]: PickContext[K] };

// Strategies remember the balancer they serve: one strategy object per balancer.
const attached = new WeakSet<BalancingStrategy>();

let settle: (lb: LoadBalancer, record: EndpointRecord, report: DoneReport | undefined, startedAt: number) => void;
let readClock: (lb: LoadBalancer) => number;

/** Slow start turns a choice away at most this many times, then accepts the last one. */
const MAX_ADMISSION_ATTEMPTS = 3;

/**
 * A client-side load balancer: holds endpoints, picks one per request with a
 * pluggable {@link BalancingStrategy}, and keeps exact per-endpoint accounting through the
 * handle each pick returns. Health is shared by all strategies: outlier ejection,
 * slow start, panic threshold and an external up/down hook.
 *
 * Time-based transitions (an ejection ending, a slow-start ramp) are evaluated on
 * the next `pick()` or `stats()`: the balancer holds no timer.
 *
 * @example
 * ```ts
 * const lb = new LoadBalancer({
 *   endpoints: [
 *     { id: 'a', address: 'http://10.0.0.1:8080' },
 *     { id: 'b', address: 'http://10.0.0.2:8080', weight: 2 },
 *   ],
 *   strategy: peakEwma(),
 * });
 * const handle = lb.pick();
 * try {
 *   const res = await fetch(`${handle.endpoint.address}/resize`);
 *   handle.done({ ok: res.status < 500 });
 * } catch {
 *   handle.done({ ok: false });
 * }
 * ```
 */
export class LoadBalancer implements Disposable {
  readonly #records = new Map<string, EndpointRecord>();
  /** Removed endpoints with requests still in flight, revived if re-added meanwhile. */
  readonly #retired = new Map<string, EndpointRecord>();
  readonly #events = new Emitter<LoadBalancerEvents>();
  readonly #strategy: BalancingStrategy;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #outlier: ResolvedOutlierDetection | undefined;
  readonly #slowStart: ResolvedSlowStart | undefined;
  readonly #panicThreshold: number;
  readonly #latencyDecayMs: number;
  readonly #errorRateWindowMs: number;
  readonly #context: MutablePickContext;
  readonly #outcome: { ok: boolean; cancelled: boolean; latencyMs: number; load: number | undefined; now: number };

  #candidates: EndpointRecord[] = [];
  #dirty = true;
  /** Earliest time a time-based transition is due (an ejection ending). */
  #nextCheck = Number.POSITIVE_INFINITY;
  #warming = 0;
  #ejected = 0;
  #healthy = 0;
  #panic = false;
  #picks = 0;
  /** Requests in flight on every endpoint, removed ones included. */
  #inFlight = 0;
  /** Sum of the candidates' weights, for a warming endpoint's share of the requests in flight. */
  #candidateWeight = 0;
  #noEndpoint = 0;
  #closed = false;

  static {
    settle = (lb, record, report, startedAt) => lb.#settle(record, report, startedAt);
    readClock = (lb) => lb.#clock.now();
  }

  /**
   * @throws {InvalidOptionError} when an option is invalid, an endpoint id repeats, or the
   * strategy already serves another balancer.
   */
  constructor(options: LoadBalancerOptions = {}) {
    this.#strategy = resolveStrategy(options.strategy ?? powerOfTwoChoices());
    if (attached.has(this.#strategy)) {
      throw new InvalidOptionError(
        'strategy',
        'a strategy instance not used by another LoadBalancer (create one per balancer)',
        this.#strategy.name,
      );
    }
    this.#clock = resolveClock(options.clock);
    this.#random = options.random === undefined ? Math.random : func('random', options.random);
    this.#outlier = resolveOutlierDetection(options.outlierDetection);
    this.#slowStart = resolveSlowStart(options.slowStart);
    this.#panicThreshold = finiteNumber('panicThresholdPercent', options.panicThresholdPercent ?? 50, { min: 0, max: 100 });
    this.#latencyDecayMs = durationMs('latencyDecayMs', options.latencyDecayMs ?? 10_000, { min: 1 });
    this.#errorRateWindowMs = durationMs('errorRateWindowMs', options.errorRateWindowMs ?? 10_000, { min: 1 });
    this.#context = { key: undefined, attempt: 0, declined: undefined, now: 0, random: this.#random };
    this.#outcome = { ok: true, cancelled: false, latencyMs: 0, load: undefined, now: 0 };
    const endpoints = options.endpoints ?? [];
    if (!Array.isArray(endpoints)) throw new InvalidOptionError('endpoints', 'an array', endpoints);
    const initial = endpoints.map((e, i) => toEndpoint(e, `endpoints[${i}]`));
    for (const e of initial) {
      if (this.#records.has(e.id)) throw new InvalidOptionError('endpoints', 'endpoints with unique ids', e.id);
      this.#records.set(e.id, this.#newRecord(e));
    }
    attached.add(this.#strategy);
    for (const record of this.#records.values()) this.#strategy.onAdd?.(record);
  }

  /** The strategy's name. */
  get strategy(): string {
    return this.#strategy.name;
  }

  /** Number of endpoints held (draining ones included). */
  get size(): number {
    return this.#records.size;
  }

  /**
   * Picks an endpoint for one request and reserves it until `handle.done()`.
   * @throws {NoEndpointAvailableError} when no endpoint can take it.
   */
  pick(options?: PickOptions): PickHandle {
    const now = this.#clock.now();
    if (this.#dirty || now >= this.#nextCheck) this.#refresh(now);
    const candidates = this.#candidates;
    if (candidates.length === 0) throw this.#noEndpointError();
    const context = this.#context;
    context.key = options?.key;
    context.attempt = 0;
    context.declined = undefined;
    context.now = now;
    let record = this.#choose(candidates, context);
    if (this.#warming !== 0) record = this.#admit(record, candidates, context);
    record.inFlight++;
    this.#inFlight++;
    record.picks++;
    this.#picks++;
    return new Handle(this, record, now);
  }

  /**
   * Adds an endpoint. Re-adding the id of an endpoint removed while requests were
   * still in flight keeps those requests' accounting.
   * @throws {InvalidOptionError} when the endpoint is invalid or its id is taken.
   */
  add(input: EndpointInput): void {
    this.#assertOpen();
    const endpoint = toEndpoint(input);
    if (this.#records.has(endpoint.id)) throw new InvalidOptionError('endpoint.id', 'an id not already in the balancer', endpoint.id);
    let record = this.#retired.get(endpoint.id);
    if (record) {
      this.#retired.delete(endpoint.id);
      record.retired = false;
      record.endpoint = endpoint;
      record.weight = endpoint.weight;
      // Re-adding cancels a drain begun before the removal.
      this.#cancelDrain(record);
      record.down = false;
      record.ejectedUntil = 0;
    } else {
      record = this.#newRecord(endpoint);
    }
    this.#records.set(endpoint.id, record);
    if (this.#records.size > 1) this.#startWarming(record, this.#clock.now());
    this.#dirty = true;
    this.#strategy.onAdd?.(record);
    this.#events.emit('added', { endpoint });
  }

  /** Removes an endpoint; requests in flight on it finish normally. Returns false when unknown. */
  remove(id: string): boolean {
    const record = this.#records.get(id);
    if (!record) return false;
    this.#records.delete(id);
    this.#stopWarming(record);
    if (record.ejectedUntil !== 0) this.#ejected--;
    record.ejectedUntil = 0;
    record.eligible = false;
    if (record.inFlight > 0) {
      record.retired = true;
      this.#retired.set(id, record);
    }
    this.#dirty = true;
    this.#strategy.onRemove?.(record);
    this.#events.emit('removed', { endpoint: record.endpoint, inFlight: record.inFlight });
    return true;
  }

  /**
   * Changes an endpoint's weight at run time. Returns false when unknown.
   * @throws {InvalidOptionError} when `weight` is not a finite number > 0.
   */
  setWeight(id: string, weight: number): boolean {
    const w = validWeight('weight', weight);
    const record = this.#records.get(id);
    if (!record) return false;
    record.endpoint = Object.freeze({ ...record.endpoint, weight: w });
    record.weight = w;
    this.#dirty = true;
    return true;
  }

  /**
   * Stops sending new requests to an endpoint and resolves once its in-flight requests
   * have finished (at once when it has none or is unknown). It stays in the balancer,
   * drained, until `remove()` or `undrain()`. The promise also resolves when the drain
   * ends early: `undrain()`, re-adding the endpoint after `remove()`, or `close()`.
   */
  drain(id: string): Promise<void> {
    const record = this.#records.get(id);
    if (!record || this.#closed) return Promise.resolve();
    if (!record.draining) {
      record.draining = true;
      this.#dirty = true;
      this.#events.emit('draining', { endpoint: record.endpoint });
      if (record.inFlight === 0) this.#resolveDrain(record);
    }
    if (record.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => record.drainWaiters.push(resolve));
  }

  /**
   * Takes a draining or drained endpoint back into rotation; a `drain()` promise still
   * pending resolves, as the drain is over. Returns false when unknown or not draining.
   */
  undrain(id: string): boolean {
    const record = this.#records.get(id);
    if (!record?.draining) return false;
    this.#cancelDrain(record);
    this.#dirty = true;
    return true;
  }

  /**
   * For an external failure detector: marks an endpoint down (no new requests, unless
   * in panic). Returns true when this changed its state.
   */
  markDown(id: string, reason?: string): boolean {
    const record = this.#records.get(id);
    if (!record || record.down) return false;
    record.down = true;
    record.downReason = reason;
    this.#stopWarming(record);
    this.#dirty = true;
    this.#events.emit('down', { endpoint: record.endpoint, reason });
    return true;
  }

  /** For an external failure detector: marks an endpoint up again (slow start applies). Returns true when this changed its state. */
  markUp(id: string): boolean {
    const record = this.#records.get(id);
    if (!record?.down) return false;
    record.down = false;
    record.downReason = undefined;
    record.forgetFailures();
    this.#startWarming(record, this.#clock.now());
    this.#dirty = true;
    this.#events.emit('up', { endpoint: record.endpoint });
    return true;
  }

  /** The endpoints held, in insertion order. */
  endpoints(): Endpoint[] {
    return Array.from(this.#records.values(), (r) => r.endpoint);
  }

  /** True when an endpoint with this id is held. */
  has(id: string): boolean {
    return this.#records.has(id);
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof LoadBalancerEvents>(event: K, listener: Listener<LoadBalancerEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /** A snapshot of the balancer and every endpoint. */
  stats(): LoadBalancerStats {
    const now = this.#clock.now();
    if (!this.#closed && (this.#dirty || now >= this.#nextCheck)) this.#refresh(now);
    const endpoints: EndpointStats[] = [];
    for (const r of this.#records.values()) {
      endpoints.push({
        id: r.id,
        address: r.endpoint.address,
        weight: r.weight,
        effectiveWeight: r.weight * this.#warmFactor(r, now),
        state: r.health(),
        inFlight: r.inFlight,
        picks: r.picks,
        successes: r.successes,
        failures: r.failures,
        cancelled: r.cancelled,
        latencyMs: Number.isNaN(r.latencyMs) ? null : r.latencyMs,
        errorRate: r.errorRate(now),
        load: r.load ?? null,
        ejections: r.totalEjections,
        downReason: r.downReason ?? null,
      });
    }
    return {
      strategy: this.#strategy.name,
      total: this.#records.size,
      healthy: this.#healthy,
      available: this.#candidates.length,
      panic: this.#panic,
      inFlight: this.#inFlight,
      picks: this.#picks,
      noEndpoint: this.#noEndpoint,
      endpoints,
    };
  }

  /**
   * Closes the balancer: `pick()` throws from now on, drain promises resolve, listeners
   * are removed. Handles already given out can still call `done()`. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#candidates = [];
    this.#dirty = false;
    this.#nextCheck = Number.POSITIVE_INFINITY;
    for (const r of this.#records.values()) this.#resolveDrain(r);
    for (const r of this.#retired.values()) this.#resolveDrain(r);
    this.#strategy.close?.();
    attached.delete(this.#strategy);
    this.#events.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #newRecord(endpoint: Endpoint): EndpointRecord {
    return new EndpointRecord(endpoint, this.#latencyDecayMs, this.#errorRateWindowMs);
  }

  #choose(candidates: EndpointRecord[], context: PickContext): EndpointRecord {
    const record = this.#strategy.pick(candidates, context) as EndpointRecord;
    if (record?.eligible !== true) {
      throw new InvalidOptionError(
        `the value strategy "${this.#strategy.name}" pick() returned`,
        'one of the candidates it was given',
        record?.id,
      );
    }
    return record;
  }

  /**
   * Slow start for every strategy: a warming endpoint keeps a choice with probability
   * equal to its ramp factor, and (without a key) only while it holds less than that
   * factor of its share of the requests in flight; otherwise the strategy chooses
   * again, told which endpoint was declined. The probability paces load-blind
   * strategies (round robin, random); the in-flight cap paces load-aware ones, which
   * would otherwise fill an idle newcomer up to a full share at once. With a key the
   * draw is the key's hash, so a key moves to the new endpoint once and stays.
   */
  #admit(record: EndpointRecord, candidates: EndpointRecord[], context: MutablePickContext): EndpointRecord {
    const draw = context.key === undefined ? undefined : hashUnit(context.key);
    for (let attempt = 1; attempt < MAX_ADMISSION_ATTEMPTS; attempt++) {
      const factor = this.#warmFactor(record, context.now);
      if (factor >= 1) return record;
      if ((draw ?? this.#random()) < factor && (draw !== undefined || this.#underWarmCap(record, factor))) return record;
      this.#strategy.onDone?.(record, this.#cancelledOutcome(context.now));
      context.attempt = attempt;
      context.declined = record;
      record = this.#choose(candidates, context);
    }
    return record;
  }

  /** True while a warming record holds less than `factor` of its weighted share of the requests in flight (or none). */
  #underWarmCap(record: EndpointRecord, factor: number): boolean {
    return record.inFlight === 0 || record.inFlight < (factor * record.weight * this.#inFlight) / this.#candidateWeight;
  }

  /** Share of its weight a record takes now: the slow-start ramp, 1 when not warming. */
  #warmFactor(record: EndpointRecord, now: number): number {
    const since = record.warmingSince;
    const slow = this.#slowStart;
    if (since === undefined || slow === undefined) return 1;
    const progress = (now - since) / slow.windowMs;
    if (progress >= 1) {
      this.#stopWarming(record);
      return 1;
    }
    return Math.max(slow.minWeight, progress);
  }

  #startWarming(record: EndpointRecord, now: number): void {
    if (this.#slowStart === undefined) return;
    if (record.warmingSince === undefined) this.#warming++;
    record.warmingSince = now;
  }

  #stopWarming(record: EndpointRecord): void {
    if (record.warmingSince === undefined) return;
    record.warmingSince = undefined;
    this.#warming--;
  }

  #cancelledOutcome(now: number): PickOutcome {
    const o = this.#outcome;
    o.ok = false;
    o.cancelled = true;
    o.latencyMs = 0;
    o.load = undefined;
    o.now = now;
    return o;
  }

  #settle(record: EndpointRecord, report: DoneReport | undefined, startedAt: number): void {
    record.inFlight--;
    this.#inFlight--;
    const now = this.#clock.now();
    const o = this.#outcome;
    o.now = now;
    if (report === undefined || report.cancelled === true) {
      record.cancelled++;
      o.ok = false;
      o.cancelled = true;
      o.latencyMs = 0;
      o.load = undefined;
    } else {
      const ok = report.ok === true;
      const reported = report.latencyMs;
      // A missing, negative or non-finite latency is replaced by the measured one.
      const latencyMs = reported !== undefined && reported >= 0 && reported < Number.POSITIVE_INFINITY ? reported : now - startedAt;
      const load = report.load;
      if (load !== undefined && Number.isFinite(load)) record.load = load;
      record.record(ok, latencyMs, now);
      o.ok = ok;
      o.cancelled = false;
      o.latencyMs = latencyMs;
      o.load = load;
      if (!ok && this.#outlier !== undefined && record.ejectedUntil === 0 && this.#records.get(record.id) === record) {
        this.#checkOutlier(record, this.#outlier, now);
      }
    }
    if (!this.#closed) this.#strategy.onDone?.(record, o);
    if (record.inFlight === 0 && (record.draining || record.retired)) {
      if (record.draining) this.#resolveDrain(record);
      if (record.retired) {
        record.retired = false;
        this.#retired.delete(record.id);
      }
    }
  }

  #checkOutlier(record: EndpointRecord, outlier: ResolvedOutlierDetection, now: number): void {
    let reason: EjectionReason | undefined;
    if (outlier.consecutiveFailures > 0 && record.consecutiveFailures >= outlier.consecutiveFailures) {
      reason = 'consecutiveFailures';
    } else if (
      outlier.failureRate > 0 &&
      record.windowRequests(now) >= outlier.failureRateMinimumRequests &&
      record.errorRate(now) >= outlier.failureRate
    ) {
      reason = 'failureRate';
    }
    if (reason === undefined) return;
    const allowed = Math.max(1, Math.floor((this.#records.size * outlier.maxEjectionPercent) / 100));
    if (this.#ejected >= allowed) return;
    // Ejections in a row lengthen the next one; each base period spent healthy forgives one.
    const forgiven = Math.floor((now - record.restoredAt) / outlier.baseEjectionTimeMs);
    // The multiplier stops growing once the ejection time reaches its cap (as Envoy's does),
    // so an endpoint that flapped for an hour is not punished for an hour more.
    const maxMultiplier = Math.ceil(outlier.maxEjectionTimeMs / outlier.baseEjectionTimeMs);
    record.ejections = Math.min(maxMultiplier, Math.max(0, record.ejections - forgiven) + 1);
    record.totalEjections++;
    const durationMs = Math.min(outlier.baseEjectionTimeMs * record.ejections, outlier.maxEjectionTimeMs);
    record.ejectedUntil = now + durationMs;
    record.forgetFailures();
    this.#stopWarming(record);
    this.#ejected++;
    this.#dirty = true;
    if (record.ejectedUntil < this.#nextCheck) this.#nextCheck = record.ejectedUntil;
    this.#events.emit('ejected', { endpoint: record.endpoint, reason, durationMs, ejections: record.ejections });
  }

  /** Applies due time-based transitions and rebuilds the candidate set. */
  #refresh(now: number): void {
    this.#dirty = false;
    if (this.#closed) return;
    let nextCheck = Number.POSITIVE_INFINITY;
    const restored: EndpointRecord[] = [];
    let total = 0;
    let healthy = 0;
    for (const r of this.#records.values()) {
      if (r.ejectedUntil !== 0) {
        if (r.ejectedUntil <= now) {
          r.ejectedUntil = 0;
          r.restoredAt = now;
          this.#ejected--;
          this.#startWarming(r, now);
          restored.push(r);
        } else if (r.ejectedUntil < nextCheck) {
          nextCheck = r.ejectedUntil;
        }
      }
      if (!r.draining) total++;
      if (r.healthy) healthy++;
    }
    this.#nextCheck = nextCheck;
    this.#healthy = healthy;
    const panic = this.#panicThreshold > 0 && total > 0 && healthy * 100 < total * this.#panicThreshold;
    const candidates: EndpointRecord[] = [];
    let candidateWeight = 0;
    for (const r of this.#records.values()) {
      r.eligible = panic ? !r.draining : r.healthy;
      if (r.eligible) {
        candidates.push(r);
        candidateWeight += r.weight;
      }
    }
    this.#candidates = candidates;
    this.#candidateWeight = candidateWeight;
    for (const r of restored) this.#events.emit('restored', { endpoint: r.endpoint });
    if (panic !== this.#panic) {
      this.#panic = panic;
      this.#events.emit(panic ? 'panic' : 'panicEnd', { healthy, total });
    }
  }

  /** Ends a drain without it completing: no `drained` event, but waiters resolve. */
  #cancelDrain(record: EndpointRecord): void {
    record.draining = false;
    record.releaseDrainWaiters();
  }

  #resolveDrain(record: EndpointRecord): void {
    if (record.draining && !this.#closed) this.#events.emit('drained', { endpoint: record.endpoint });
    record.releaseDrainWaiters();
  }

  #noEndpointError(): NoEndpointAvailableError {
    this.#noEndpoint++;
    const reason: NoEndpointReason = this.#closed ? 'closed' : this.#records.size === 0 ? 'empty' : 'unavailable';
    return withoutStack(() => new NoEndpointAvailableError(reason));
  }

  #assertOpen(): void {
    if (this.#closed) throw new NoEndpointAvailableError('closed', 'the load balancer is closed');
  }
}

class Handle implements PickHandle {
  readonly endpoint: Endpoint;
  readonly #lb: LoadBalancer;
  readonly #record: EndpointRecord;
  #startedAt: number;
  #settled = false;

  constructor(lb: LoadBalancer, record: EndpointRecord, now: number) {
    this.#lb = lb;
    this.#record = record;
    this.endpoint = record.endpoint;
    this.#startedAt = now;
  }

  start(): void {
    if (!this.#settled) this.#startedAt = readClock(this.#lb);
  }

  elapsedMs(): number {
    return readClock(this.#lb) - this.#startedAt;
  }

  done(report: DoneReport): void {
    if (this.#settled) return;
    this.#settled = true;
    settle(this.#lb, this.#record, report, this.#startedAt);
  }

  [Symbol.dispose](): void {
    if (this.#settled) return;
    this.#settled = true;
    settle(this.#lb, this.#record, undefined, this.#startedAt);
  }
}

/** FNV-1a of `key`, mapped to [0, 1). */
export function hashUnit(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 4_294_967_296;
}
