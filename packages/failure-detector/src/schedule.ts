import { linkSignal, MAX_TIMER_MS } from '@ballast/common';

/** How a {@link Ticker} paces its runs. */
export interface TickerTiming {
  /** Mean time between runs, ms. */
  intervalMs: number;
  /** Each delay is drawn uniformly from `intervalMs × (1 ± jitter)`. */
  jitter: number;
  /** A run's signal aborts after this many ms. */
  timeoutMs: number;
  /** Random source in [0, 1). */
  random: () => number;
}

/**
 * Runs an async task at once and then every `intervalMs` (with jitter), each run with
 * its own signal that aborts after `timeoutMs` or on {@link stop}. The next run is
 * scheduled when a run starts, so a slow run does not shift the cadence; a run is
 * skipped while the previous one is still under way. The timer is unref'd. The task
 * must not reject: it reports its own failures.
 */
export class Ticker {
  readonly #task: (signal: AbortSignal) => Promise<void>;
  readonly #timing: TickerTiming;
  readonly #stopping = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;

  constructor(task: (signal: AbortSignal) => Promise<void>, timing: TickerTiming) {
    this.#task = task;
    this.#timing = timing;
    this.#tick();
  }

  /** True while a run is under way. */
  get busy(): boolean {
    return this.#running !== undefined;
  }

  /** True once {@link stop} has been called. */
  get stopped(): boolean {
    return this.#stopping.signal.aborted;
  }

  /** Clears the timer, aborts the run under way with `reason` and waits for it to settle. Idempotent. */
  async stop(reason?: unknown): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#stopping.signal.aborted) this.#stopping.abort(reason);
    await this.#running;
  }

  #tick(): void {
    if (this.stopped) return;
    const { intervalMs, jitter, random } = this.#timing;
    const delay = intervalMs * (1 + jitter * (2 * random() - 1));
    this.#timer = setTimeout(() => this.#tick(), Math.min(Math.max(0, delay), MAX_TIMER_MS));
    this.#timer.unref?.();
    if (this.#running !== undefined) return;
    const linked = linkSignal([this.#stopping.signal], this.#timing.timeoutMs);
    const running = this.#task(linked.signal).finally(() => {
      linked.dispose();
      this.#running = undefined;
    });
    this.#running = running;
  }
}
