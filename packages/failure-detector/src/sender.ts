import {
  type Clock,
  durationMs,
  Emitter,
  func,
  type Listener,
  nonEmptyString,
  ratio,
  systemClock,
  type Unsubscribe,
} from '@ballast/common';
import { FailureDetectorError, isFailureDetectorError } from './errors.ts';
import type { HeartbeatMessage } from './message.ts';
import { Ticker, type TickerTiming } from './schedule.ts';

/** Delivers one heartbeat; rejects when it could not. Must honour `signal`. */
export type HeartbeatTransport = (message: HeartbeatMessage, signal: AbortSignal) => Promise<void>;

/** Pacing options shared by the heartbeat senders and the health poller. */
export interface PacingOptions {
  /**
   * Mean time between heartbeats (or probes), in milliseconds.
   * @default 1000
   */
  intervalMs?: number;
  /**
   * Spread of each interval as a share of `intervalMs`: delays are drawn uniformly from
   * `intervalMs × (1 ± jitter)`, so a fleet started at once does not beat in lockstep.
   * @default 0.1
   */
  jitter?: number;
  /**
   * Time allowed for one heartbeat (or probe), in milliseconds; a slower one is aborted
   * and counted as failed.
   * @default intervalMs
   */
  timeoutMs?: number;
  /** Random source in [0, 1) for the jitter. @default Math.random */
  random?: () => number;
  /** Time source for latencies. @default systemClock (performance.now) */
  clock?: Clock;
}

/** Options shared by every heartbeat sender. */
export interface HeartbeatSenderOptions extends PacingOptions {
  /** This node's id, as the monitor knows it. */
  id: string;
}

/** Validates pacing options; throws InvalidOptionError naming the bad one. */
export function pacing(options: PacingOptions): TickerTiming & { clock: Clock } {
  const intervalMs = durationMs('intervalMs', options.intervalMs ?? 1000, { min: 1 });
  return {
    intervalMs,
    jitter: ratio('jitter', options.jitter ?? 0.1),
    timeoutMs: durationMs('timeoutMs', options.timeoutMs ?? intervalMs, { min: 1 }),
    random: options.random === undefined ? Math.random : func<() => number>('random', options.random),
    clock: options.clock ?? systemClock,
  };
}

/** Events of {@link HeartbeatSender}. */
export interface HeartbeatSenderEvents {
  /** A heartbeat was delivered. */
  sent: { seq: number; latencyMs: number };
  /** A heartbeat could not be delivered; `error.code` is `ERR_BALLAST_HEARTBEAT_FAILED`. */
  fail: { seq: number; error: FailureDetectorError };
}

/** A snapshot returned by {@link HeartbeatSender.stats}. */
export interface HeartbeatSenderStats {
  /** Heartbeats delivered. */
  sent: number;
  /** Heartbeats that failed. */
  failed: number;
  /** The last failure, if any. */
  lastError: FailureDetectorError | undefined;
}

/**
 * Sends a heartbeat at once and then every `intervalMs` (with jitter) through a
 * transport, until closed. Failures never throw: they are counted and reported through
 * the `fail` event, and sending goes on. A heartbeat is skipped while the previous one
 * is still under way. Use {@link httpHeartbeatSender} or {@link redisHeartbeatSender},
 * or pass your own transport.
 */
export class HeartbeatSender implements AsyncDisposable {
  /** This node's id. */
  readonly id: string;
  readonly #transport: HeartbeatTransport;
  readonly #clock: Clock;
  readonly #events = new Emitter<HeartbeatSenderEvents>();
  readonly #ticker: Ticker;
  #seq = 0;
  #sent = 0;
  #failed = 0;
  #lastError: FailureDetectorError | undefined;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: HeartbeatSenderOptions, transport: HeartbeatTransport) {
    this.id = nonEmptyString('id', options?.id);
    this.#transport = func<HeartbeatTransport>('transport', transport);
    const timing = pacing(options);
    this.#clock = timing.clock;
    this.#ticker = new Ticker((signal) => this.#send(signal), timing);
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof HeartbeatSenderEvents>(event: K, listener: Listener<HeartbeatSenderEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /** Counters since the sender was created. */
  stats(): HeartbeatSenderStats {
    return { sent: this.#sent, failed: this.#failed, lastError: this.#lastError };
  }

  /** Stops sending, aborts the delivery under way and waits for it to settle. Idempotent. */
  async close(): Promise<void> {
    await this.#ticker.stop(new FailureDetectorError('ERR_BALLAST_HEARTBEAT_FAILED', 'the heartbeat sender was closed'));
    this.#events.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #send(signal: AbortSignal): Promise<void> {
    const seq = this.#seq++;
    const started = this.#clock.now();
    try {
      await this.#transport({ id: this.id, seq }, signal);
      this.#sent++;
      this.#events.emit('sent', { seq, latencyMs: this.#clock.now() - started });
    } catch (cause) {
      // #ticker is unset when a transport throws synchronously during construction.
      if (this.#ticker?.stopped) return;
      const error = isFailureDetectorError(cause)
        ? cause
        : new FailureDetectorError('ERR_BALLAST_HEARTBEAT_FAILED', `heartbeat ${seq} of ${this.id} failed: ${describeError(cause)}`, {
            cause,
          });
      this.#failed++;
      this.#lastError = error;
      this.#events.emit('fail', { seq, error });
    }
  }
}

/** An error's message with its cause's, for error messages that wrap it. */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.message}${cause}`;
}
