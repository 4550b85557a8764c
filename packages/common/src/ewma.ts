/**
 * An exponentially weighted moving average that decays with time rather than with
 * the number of samples, as Finagle's peak-EWMA and Envoy's outlier detection use:
 * a sample `dt` ms after the previous one weighs `1 - exp(-dt / tau)`.
 * Irregular sample spacing therefore does not skew the average.
 */
export class TimeDecayEwma {
  readonly #tauMs: number;
  #value: number;
  #last: number | undefined;

  /**
   * @param tauMs time constant: after `tauMs` an old value keeps `1/e` of its weight.
   * @param initial value reported before the first sample.
   */
  constructor(tauMs: number, initial = 0) {
    this.#tauMs = tauMs;
    this.#value = initial;
  }

  /** Adds a sample observed at time `now` (ms). */
  update(sample: number, now: number): number {
    if (this.#last === undefined) {
      this.#value = sample;
    } else {
      const dt = Math.max(0, now - this.#last);
      const w = Math.exp(-dt / this.#tauMs);
      this.#value = this.#value * w + sample * (1 - w);
    }
    this.#last = now;
    return this.#value;
  }

  /** Peak-sensitive update: a sample above the average replaces it at once. */
  updatePeak(sample: number, now: number): number {
    if (this.#last !== undefined && sample > this.#value) {
      this.#value = sample;
      this.#last = now;
      return sample;
    }
    return this.update(sample, now);
  }

  /** The current average (`initial` before any sample). */
  get value(): number {
    return this.#value;
  }

  /** True once a sample has been recorded. */
  get hasSamples(): boolean {
    return this.#last !== undefined;
  }

  /** Time of the last sample, or `undefined`. */
  get lastUpdate(): number | undefined {
    return this.#last;
  }

  /** Forgets every sample. */
  reset(initial = 0): void {
    this.#value = initial;
    this.#last = undefined;
  }
}
