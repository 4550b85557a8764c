import { RollingWindow, TimeDecayEwma } from '@ballast/common';
import type { Endpoint, EndpointHealth, EndpointState } from './types.ts';

const SUCCESS = 0;
const FAILURE = 1;

/** The balancer's bookkeeping for one endpoint. Internal: strategies see it as {@link EndpointState}. */
export class EndpointRecord implements EndpointState {
  endpoint: Endpoint;
  id: string;
  weight: number;
  inFlight = 0;
  load: number | undefined = undefined;
  eligible = false;
  data: unknown = undefined;

  picks = 0;
  successes = 0;
  failures = 0;
  cancelled = 0;
  consecutiveFailures = 0;

  /** Health flags; `health` derives the reported state from them. */
  draining = false;
  /** Removed while requests were in flight; kept until they finish. */
  retired = false;
  down = false;
  downReason: string | undefined = undefined;
  /** When the current ejection ends (ms), 0 when not ejected. */
  ejectedUntil = 0;
  /** Ejections in a row, decaying while healthy; sets the next ejection's length. */
  ejections = 0;
  totalEjections = 0;
  restoredAt: number = Number.NEGATIVE_INFINITY;
  /** Start of the slow-start ramp, or undefined when not warming. */
  warmingSince: number | undefined = undefined;
  drainWaiters: Array<() => void> = [];

  readonly #latency: TimeDecayEwma;
  readonly #outcomes: RollingWindow;

  constructor(endpoint: Endpoint, latencyDecayMs: number, errorRateWindowMs: number) {
    this.endpoint = endpoint;
    this.id = endpoint.id;
    this.weight = endpoint.weight;
    this.#latency = new TimeDecayEwma(latencyDecayMs, Number.NaN);
    this.#outcomes = new RollingWindow(errorRateWindowMs, 10, 2);
  }

  get latencyMs(): number {
    return this.#latency.value;
  }

  get healthy(): boolean {
    return !this.draining && !this.down && this.ejectedUntil === 0;
  }

  health(): EndpointHealth {
    if (this.draining) return 'draining';
    if (this.down) return 'down';
    if (this.ejectedUntil !== 0) return 'ejected';
    if (this.warmingSince !== undefined) return 'warming';
    return 'healthy';
  }

  errorRate(now: number): number {
    const failures = this.#outcomes.total(FAILURE, now);
    const total = failures + this.#outcomes.total(SUCCESS, now);
    return total === 0 ? 0 : failures / total;
  }

  /** Requests (successes + failures) in the error-rate window. */
  windowRequests(now: number): number {
    return this.#outcomes.total(FAILURE, now) + this.#outcomes.total(SUCCESS, now);
  }

  record(ok: boolean, latencyMs: number, now: number): void {
    if (ok) {
      this.successes++;
      this.consecutiveFailures = 0;
    } else {
      this.failures++;
      this.consecutiveFailures++;
    }
    this.#outcomes.add(ok ? SUCCESS : FAILURE, now);
    if (latencyMs >= 0) this.#latency.update(latencyMs, now);
  }

  /** Resolves every pending `drain()` promise. */
  releaseDrainWaiters(): void {
    const waiters = this.drainWaiters;
    if (waiters.length === 0) return;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Forgets recent failures, so a restored endpoint starts with a clean slate. */
  forgetFailures(): void {
    this.consecutiveFailures = 0;
    this.#outcomes.reset();
  }
}
