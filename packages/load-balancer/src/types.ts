/** An endpoint as users describe it: an id, where it lives, how much traffic it takes. */
export interface EndpointInput {
  /** Unique id, e.g. `'api-1'`. */
  id: string;
  /** Where it lives, e.g. `'http://10.0.0.5:8080'`. The balancer never parses it. */
  address: string;
  /** Relative share of traffic, > 0. @default 1 */
  weight?: number;
  /** Anything the application wants to carry along (zone, version…). @default {} */
  metadata?: Readonly<Record<string, unknown>>;
}

/** An endpoint as the balancer holds it. Immutable: `setWeight` replaces it. */
export interface Endpoint {
  readonly id: string;
  readonly address: string;
  readonly weight: number;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/**
 * Health of an endpoint, most significant first: an endpoint that is both
 * draining and down reports `draining`.
 * - `draining`: takes no new requests (`drain()`), finishing those in flight.
 * - `down`: marked down by an external failure detector (`markDown()`).
 * - `ejected`: ejected for a while by outlier detection.
 * - `warming`: healthy, in its slow-start window, taking a growing share.
 * - `healthy`: takes its full share.
 */
export type EndpointHealth = 'healthy' | 'warming' | 'ejected' | 'down' | 'draining';

/**
 * What a strategy sees of an endpoint: live counters the balancer keeps exact.
 * `data` is a free slot owned by the balancer's strategy, for per-endpoint state
 * (a smooth-weighted counter, a latency estimate) without a map lookup per pick.
 */
export interface EndpointState {
  readonly endpoint: Endpoint;
  readonly id: string;
  /** Configured weight (> 0). */
  readonly weight: number;
  /** Requests picked and not yet `done()`. */
  readonly inFlight: number;
  /** Time-decayed average latency in ms; `NaN` before the first sample. */
  readonly latencyMs: number;
  /** Last load the endpoint reported through `done({ load })`, if any. */
  readonly load: number | undefined;
  /** True while the endpoint is among the candidates `pick()` offers strategies. */
  readonly eligible: boolean;
  /** Share of failed requests over the error-rate window ending at `now`, 0 when there were none. */
  errorRate(now: number): number;
  /** Free for the strategy's own per-endpoint state. */
  data: unknown;
}

/** Per-pick context handed to {@link BalancingStrategy.pick}. Reused between picks: do not keep it. */
export interface PickContext {
  /** Affinity key given to `pick({ key })`, e.g. a client IP or a user id. */
  readonly key: string | undefined;
  /**
   * 0 on the first pick of a request; 1, 2 when slow start turned the previous choice
   * away. Hash strategies use it to move to the next endpoint in preference order.
   */
  readonly attempt: number;
  /**
   * On a second or third attempt, the endpoint slow start just declined for this
   * request; `undefined` on the first. A strategy that would choose it again by a fixed
   * rule (fewest in flight, lowest cost) should prefer another candidate, or a warming
   * endpoint would win every retry and slow start would change nothing.
   */
  readonly declined?: EndpointState | undefined;
  /** The balancer's clock reading for this pick, ms. */
  readonly now: number;
  /** The balancer's random source, in [0, 1). Use it, not `Math.random`, so seeded runs repeat. */
  readonly random: () => number;
}

/** The outcome of a request, handed to {@link BalancingStrategy.onDone}. Reused: do not keep it. */
export interface PickOutcome {
  readonly ok: boolean;
  /** The request was abandoned before an answer: it says nothing about the endpoint. */
  readonly cancelled: boolean;
  /** Measured or reported latency, ms. */
  readonly latencyMs: number;
  /** Load the endpoint reported, if any. */
  readonly load: number | undefined;
  /** Clock reading when the request finished, ms. */
  readonly now: number;
}

/**
 * A balancing strategy: one small object per balancer. Only `pick` is required.
 *
 * @example
 * ```ts
 * // Always the first candidate: a primary with fallbacks.
 * const firstAvailable: BalancingStrategy = { name: 'first', pick: (candidates) => candidates[0]! };
 * ```
 */
export interface BalancingStrategy {
  /** Shown in `stats()` and benchmark tables. */
  readonly name: string;
  /**
   * Chooses one of `candidates` (never empty; the array is replaced, not mutated, when
   * the set changes, so strategies may cache per array identity). Must return one of them.
   */
  pick(candidates: readonly EndpointState[], context: PickContext): EndpointState;
  /** An endpoint joined the balancer (also called for the initial endpoints). */
  onAdd?(endpoint: EndpointState): void;
  /** An endpoint left the balancer. */
  onRemove?(endpoint: EndpointState): void;
  /**
   * A request finished. Also called with `cancelled: true` for a choice slow start
   * turned away before it became a request, so strategies that count assignments can
   * release them.
   */
  onDone?(endpoint: EndpointState, outcome: PickOutcome): void;
  /** The balancer closed. */
  close?(): void;
}

/** What the caller reports to {@link PickHandle.done}. */
export interface DoneReport {
  /** The endpoint served the request (false: error, timeout, 5xx). */
  ok: boolean;
  /** Latency in ms; measured from `pick()` (or `start()`) when omitted. */
  latencyMs?: number;
  /** Load the endpoint reported (0–1 utilisation, e.g. from an `x-ballast-load` header). */
  load?: number;
  /**
   * The request was abandoned before an answer (client went away): in-flight counts
   * are released but neither latency nor failure is recorded.
   * @default false
   */
  cancelled?: boolean;
}

/** One picked endpoint, reserved for one request until `done()`. */
export interface PickHandle extends Disposable {
  /** The endpoint to send the request to. */
  readonly endpoint: Endpoint;
  /** Marks the moment the request actually starts (latency is measured from here). Optional. */
  start(): void;
  /** Milliseconds since `pick()` (or `start()`), on the balancer's clock: e.g. time to first byte. */
  elapsedMs(): number;
  /** Reports the outcome and releases the endpoint. Idempotent: later calls do nothing. */
  done(report: DoneReport): void;
}

/** Options of `pick()`. */
export interface PickOptions {
  /** Affinity key for hash strategies (client IP, user id, cache key). */
  key?: string;
}

/** @deprecated Renamed {@link PickOutcome} (retry and common have outcomes of their own); this alias goes in the next major version. */
export type Outcome = PickOutcome;

/** @deprecated Renamed {@link BalancingStrategy} (partitioning has a `Strategy` of its own); this alias goes in the next major version. */
export type Strategy = BalancingStrategy;
