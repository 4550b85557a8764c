import type { HistogramSummary } from '@ballast/common';
import type { OpossumStats } from './opossum-types.ts';

/** The states of a circuit. `halfOpen` admits a limited number of trial calls. */
export type CircuitState = 'closed' | 'open' | 'halfOpen';

/**
 * The circuit and what belongs to its current state, as one tagged union: one object per
 * period, replaced on every transition, so a trial call knows the half-open period it
 * belongs to by identity and no field outlives the state it describes.
 */
export type Circuit = ClosedCircuit | OpenCircuit | HalfOpenCircuit;

/** Calls flow. */
export interface ClosedCircuit {
  readonly kind: 'closed';
}

/** Calls are refused until `resetTimer` fires. */
export interface OpenCircuit {
  readonly kind: 'open';
  readonly reason: OpenReason;
  /** Clock time the open period began (moved back when restored mid-period). */
  openedAt: number;
  /** The same, in wall-clock ms since the epoch, for `toJSON()`. */
  openedAtWall: number;
  /** Length of the open period, ms. */
  readonly forMs: number;
  resetTimer: ReturnType<typeof setTimeout> | undefined;
}

/** Up to `halfOpenMaxCalls` trial calls are admitted until `endsAt`. */
export interface HalfOpenCircuit {
  readonly kind: 'halfOpen';
  /** Clock time at which the period expires (and the circuit opens again). */
  readonly endsAt: number;
  started: number;
  succeeded: number;
  failed: number;
  expiryTimer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * How a call ended, as the breaker counted it:
 * - `success`: returned a result that is not a failure;
 * - `error`: threw (or rejected) with an error that counts;
 * - `result`: returned a result that `isFailure` judged a failure (e.g. a 503 response);
 * - `slow`: succeeded, but took at least `slowCallDurationMs`;
 * - `timeout`: exceeded `timeout` and was aborted;
 * - `ignored`: a caller error (`errorFilter` said so) or a call cancelled by the caller;
 * - `rejected`: refused without running because the circuit was open.
 */
export type CallOutcome = 'success' | 'error' | 'result' | 'slow' | 'timeout' | 'ignored' | 'rejected';

/** Why the circuit opened. */
export type OpenReason = 'threshold' | 'trialFailure' | 'halfOpenExpired' | 'manual' | 'healthCheck' | 'restored';

/** The persistable state of a breaker: `toJSON()` returns it, `initialState` takes it back. */
export interface CircuitBreakerSnapshot {
  /** The breaker's name when exported. */
  name: string;
  /** The state when exported. */
  state: CircuitState;
  /** When the circuit last opened, in wall-clock ms since the epoch (`Date.now()`), when open. */
  openedAt?: number;
}

/** Typed events of a breaker; subscribe with `breaker.on(name, listener)`. */
export interface CircuitBreakerEvents {
  /** The circuit opened: calls are refused for `retryAfterMs`. */
  open: { name: string; reason: OpenReason; retryAfterMs: number };
  /** The open period ended: up to `halfOpenMaxCalls` trial calls are admitted. */
  halfOpen: { name: string };
  /** The circuit closed: calls flow again. */
  close: { name: string };
  /** A call was refused without running. */
  reject: { name: string; state: Exclude<CircuitState, 'closed'>; retryAfterMs: number };
  /** A call exceeded `timeout`; its signal was aborted. A `failure` event follows. */
  timeout: { name: string; timeoutMs: number };
  /** A call counted as a failure (outcome `error`, `result`, `slow` or `timeout`). */
  failure: {
    name: string;
    outcome: 'error' | 'result' | 'slow' | 'timeout';
    durationMs: number;
    /** The error thrown, for `error` and `timeout`. */
    error?: unknown;
    /** The result returned, for `result` and `slow`. */
    result?: unknown;
    /** True when this was a half-open trial call. */
    trial: boolean;
  };
  /** A call counted as a success. */
  success: { name: string; durationMs: number; trial: boolean };
}

/** A point-in-time view of a breaker, from `stats()`. Counters are cumulative since construction. */
export interface CircuitBreakerStats {
  name: string;
  state: CircuitState;
  /** Milliseconds until a trial call is admitted; 0 when closed or half-open with room. */
  retryAfterMs: number;
  /** Calls running now. */
  inFlight: number;
  /** Cumulative calls by outcome. */
  calls: Record<CallOutcome, number>;
  /** Trial calls of the current half-open period (all 0 outside it). */
  trials: { started: number; succeeded: number; failed: number };
  /** Latency of calls that ran, in ms, since construction (Ballast's histogram, O(1) per call). */
  latencyMs: HistogramSummary;
  /** opossum's rolling window counts (the numbers it decides to open on). */
  window: Pick<OpossumStats, 'fires' | 'successes' | 'failures' | 'rejects' | 'timeouts' | 'semaphoreRejections'>;
}
