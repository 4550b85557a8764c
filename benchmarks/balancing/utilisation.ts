/**
 * The load a server reports to the balancer (`x-ballast-load`, `done({ load })`): the
 * share of its slots that were busy, averaged over about a second, the way a server
 * reports CPU utilisation. Used by the simulated servers and the live backends alike.
 */
export class UtilisationMeter {
  readonly #concurrency: number;
  readonly #tauMs: number;
  #busy = 0;
  #value = 0;
  #since: number;

  constructor(concurrency: number, now: number, tauMs = 1000) {
    this.#concurrency = concurrency;
    this.#tauMs = tauMs;
    this.#since = now;
  }

  /** Records that the number of busy slots changed to `busy` at `now`. */
  set(busy: number, now: number): void {
    this.#value = this.read(now);
    this.#since = now;
    this.#busy = busy;
  }

  /** The time-averaged utilisation at `now`, 0–1. */
  read(now: number): number {
    const decay = Math.exp(-(now - this.#since) / this.#tauMs);
    return this.#value * decay + (this.#busy / this.#concurrency) * (1 - decay);
  }
}
