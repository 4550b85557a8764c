/**
 * Counts of events in a sliding time window made of `buckets` slots, O(1) per
 * record and per read regardless of how many events the window holds. Each slot
 * holds `fields` counters (for example successes, failures, slow calls).
 *
 * Slots are recycled lazily as time advances, so an idle window costs nothing and
 * needs no timer.
 */
export class RollingWindow {
  readonly windowMs: number;
  readonly buckets: number;
  readonly fields: number;
  readonly #bucketMs: number;
  readonly #counts: Float64Array;
  readonly #totals: Float64Array;
  #head = 0;
  #headStart: number | undefined;

  /**
   * @param windowMs length of the window.
   * @param buckets number of slots; the window slides in steps of `windowMs / buckets`.
   * @param fields number of counters per slot.
   */
  constructor(windowMs: number, buckets = 10, fields = 2) {
    this.windowMs = windowMs;
    this.buckets = buckets;
    this.fields = fields;
    this.#bucketMs = windowMs / buckets;
    this.#counts = new Float64Array(buckets * fields);
    this.#totals = new Float64Array(fields);
  }

  /** Adds `amount` (default 1) to counter `field` at time `now`. */
  add(field: number, now: number, amount = 1): void {
    this.#advance(now);
    this.#counts[this.#head * this.fields + field]! += amount;
    this.#totals[field]! += amount;
  }

  /** The total of counter `field` over the window ending at `now`. */
  total(field: number, now: number): number {
    this.#advance(now);
    return this.#totals[field] as number;
  }

  /** The totals of every counter over the window ending at `now`. */
  totals(now: number): number[] {
    this.#advance(now);
    return Array.from(this.#totals);
  }

  /** Empties the window. */
  reset(): void {
    this.#counts.fill(0);
    this.#totals.fill(0);
    this.#headStart = undefined;
  }

  #advance(now: number): void {
    if (this.#headStart === undefined) {
      this.#headStart = now;
      return;
    }
    const elapsed = Math.floor((now - this.#headStart) / this.#bucketMs);
    if (elapsed <= 0) return;
    const steps = Math.min(elapsed, this.buckets);
    for (let s = 0; s < steps; s++) {
      this.#head = (this.#head + 1) % this.buckets;
      const base = this.#head * this.fields;
      for (let f = 0; f < this.fields; f++) {
        this.#totals[f]! -= this.#counts[base + f]!;
        this.#counts[base + f] = 0;
      }
    }
    this.#headStart += elapsed * this.#bucketMs;
  }
}
