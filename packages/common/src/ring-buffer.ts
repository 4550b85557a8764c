/**
 * A fixed-capacity FIFO of numbers over a `Float64Array`, keeping a running sum and
 * sum of squares so mean and variance are O(1). When full, `push` overwrites the
 * oldest value.
 */
export class NumberRing {
  readonly capacity: number;
  readonly #data: Float64Array;
  #start = 0;
  #size = 0;
  #sum = 0;
  #sumSquares = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#data = new Float64Array(capacity);
  }

  /** Appends `value`, evicting the oldest when full; returns the evicted value, if any. */
  push(value: number): number | undefined {
    let evicted: number | undefined;
    if (this.#size === this.capacity) {
      evicted = this.#data[this.#start] as number;
      this.#sum -= evicted;
      this.#sumSquares -= evicted * evicted;
      this.#data[this.#start] = value;
      this.#start = (this.#start + 1) % this.capacity;
    } else {
      this.#data[(this.#start + this.#size) % this.capacity] = value;
      this.#size++;
    }
    this.#sum += value;
    this.#sumSquares += value * value;
    return evicted;
  }

  get size(): number {
    return this.#size;
  }

  get sum(): number {
    return this.#sum;
  }

  get mean(): number {
    return this.#size === 0 ? 0 : this.#sum / this.#size;
  }

  /** Population variance, as Akka's phi accrual detector uses. */
  get variance(): number {
    if (this.#size === 0) return 0;
    const mean = this.#sum / this.#size;
    return Math.max(0, this.#sumSquares / this.#size - mean * mean);
  }

  /** The value at `index` (0 is the oldest). */
  at(index: number): number | undefined {
    if (index < 0 || index >= this.#size) return undefined;
    return this.#data[(this.#start + index) % this.capacity];
  }

  /** The values, oldest first. */
  toArray(): number[] {
    const out = new Array<number>(this.#size);
    for (let i = 0; i < this.#size; i++) out[i] = this.#data[(this.#start + i) % this.capacity] as number;
    return out;
  }

  clear(): void {
    this.#start = 0;
    this.#size = 0;
    this.#sum = 0;
    this.#sumSquares = 0;
  }
}
