import type { Clock } from '@ballast/common';
import { MAX_TIMER_MS } from '@ballast/common';

/**
 * Something that expires at a clock time; the queue calls `expire()` then. The
 * `expiryIndex` field belongs to the queue (the entry's place in its heap, so deleting
 * needs no search); initialise it to `-1`.
 */
export interface Expirable {
  readonly expiresAt: number;
  expire(): void;
  expiryIndex: number;
}

/**
 * Many deadlines on one timer. Each entry fires exactly at its time (never early). The
 * entries sit in a binary min-heap by time, so adding and deleting one is O(log n) and
 * a firing costs O(log n) per entry due, however many attempts are in flight (a failing
 * upstream with thousands of hanging attempts is when timeouts matter most). The single
 * timer is armed for the earliest entry, and deleting an entry leaves it armed; when it
 * fires it fires what is due and re-arms for the earliest entry left, or stops. Most
 * calls end long before their deadline, so a busy policy pays for one `setTimeout` per
 * deadline period instead of one per attempt.
 *
 * The timer holds the process open only while an entry waits on it, so an attempt that
 * hangs on nothing still times out, while the lapsed deadline of a call that has ended
 * (the armed timer outlives the entries deleted before it) keeps nothing alive.
 */
export class ExpiryQueue {
  readonly #clock: Clock;
  readonly #heap: Expirable[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedAt = Number.POSITIVE_INFINITY;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Calls `entry.expire()` at clock time `entry.expiresAt` unless deleted first. */
  add(entry: Expirable): void {
    const heap = this.#heap;
    entry.expiryIndex = heap.length;
    heap.push(entry);
    this.#up(entry.expiryIndex);
    if (heap.length === 1) this.#timer?.ref?.();
    if (entry.expiresAt < this.#armedAt) this.#arm(entry.expiresAt);
  }

  /** Removes an entry; does nothing when it is not in this queue. */
  delete(entry: Expirable): void {
    const heap = this.#heap;
    const i = entry.expiryIndex;
    if (i < 0 || heap[i] !== entry) return;
    entry.expiryIndex = -1;
    const last = heap.pop() as Expirable;
    if (last !== entry) {
      heap[i] = last;
      last.expiryIndex = i;
      if (last.expiresAt < entry.expiresAt) this.#up(i);
      else this.#down(i);
    }
    if (heap.length === 0) this.#timer?.unref?.();
  }

  /** Entries waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /** Drops every entry and the timer. */
  clear(): void {
    for (const entry of this.#heap) entry.expiryIndex = -1;
    this.#heap.length = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.min(Math.max(0, at - this.#clock.now()), MAX_TIMER_MS));
    if (this.#heap.length === 0) this.#timer.unref?.();
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    const heap = this.#heap;
    const due: Expirable[] = [];
    for (let first = heap[0]; first !== undefined && first.expiresAt <= now; first = heap[0]) {
      this.delete(first);
      due.push(first);
    }
    const next = heap[0];
    if (next !== undefined) this.#arm(next.expiresAt);
    for (const entry of due) entry.expire();
  };

  #up(i: number): void {
    const heap = this.#heap;
    const entry = heap[i] as Expirable;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p] as Expirable;
      if (parent.expiresAt <= entry.expiresAt) break;
      heap[i] = parent;
      parent.expiryIndex = i;
      i = p;
    }
    heap[i] = entry;
    entry.expiryIndex = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const entry = heap[i] as Expirable;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const right = heap[c + 1];
      if (right !== undefined && right.expiresAt < (heap[c] as Expirable).expiresAt) c++;
      const child = heap[c] as Expirable;
      if (child.expiresAt >= entry.expiresAt) break;
      heap[i] = child;
      child.expiryIndex = i;
      i = c;
    }
    heap[i] = entry;
    entry.expiryIndex = i;
  }
}
