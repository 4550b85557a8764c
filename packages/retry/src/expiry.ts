import type { Clock } from '@ballast/common';
import { MAX_TIMER_MS } from '@ballast/common';

/**
 * Something that expires at a clock time; the queue calls `expire()` then. The two
 * link fields belong to the queue (it threads its entries into a list through them,
 * so adding and deleting allocate nothing); initialise them to `undefined`.
 */
export interface Expirable {
  readonly expiresAt: number;
  expire(): void;
  expiryPrev: Expirable | undefined;
  expiryNext: Expirable | undefined;
}

/**
 * Many deadlines on one timer. Each entry fires exactly at its time (never early),
 * yet adding and deleting an entry is O(1), allocates nothing and creates no timer in
 * the common case: the single timer is armed for the earliest entry, and deleting an
 * entry leaves it armed; when it fires it fires what is due and re-arms for the
 * earliest entry left, or stops. Most calls end long before their deadline, so a busy
 * policy pays for one `setTimeout` per deadline period instead of one per attempt.
 *
 * The timer holds the process open only while an entry waits on it, so an attempt that
 * hangs on nothing still times out, while the lapsed deadline of a call that has ended
 * (the armed timer outlives the entries deleted before it) keeps nothing alive.
 */
export class ExpiryQueue {
  readonly #clock: Clock;
  #head: Expirable | undefined;
  #size = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedAt = Number.POSITIVE_INFINITY;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Calls `entry.expire()` at clock time `entry.expiresAt` unless deleted first. */
  add(entry: Expirable): void {
    entry.expiryPrev = undefined;
    entry.expiryNext = this.#head;
    if (this.#head) this.#head.expiryPrev = entry;
    this.#head = entry;
    if (this.#size++ === 0) this.#timer?.ref?.();
    if (entry.expiresAt < this.#armedAt) this.#arm(entry.expiresAt);
  }

  /** Removes an entry added to this queue. */
  delete(entry: Expirable): void {
    const { expiryPrev: prev, expiryNext: next } = entry;
    if (prev) prev.expiryNext = next;
    else if (this.#head === entry) this.#head = next;
    else return; // not in the queue
    if (next) next.expiryPrev = prev;
    entry.expiryPrev = undefined;
    entry.expiryNext = undefined;
    if (--this.#size === 0) this.#timer?.unref?.();
  }

  /** Entries waiting. */
  get size(): number {
    return this.#size;
  }

  /** Drops every entry and the timer. */
  clear(): void {
    for (let entry = this.#head; entry; ) {
      const next = entry.expiryNext;
      entry.expiryPrev = undefined;
      entry.expiryNext = undefined;
      entry = next;
    }
    this.#head = undefined;
    this.#size = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#armedAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.min(Math.max(0, at - this.#clock.now()), MAX_TIMER_MS));
    if (this.#size === 0) this.#timer.unref?.();
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    let next = Number.POSITIVE_INFINITY;
    const due: Expirable[] = [];
    for (let entry = this.#head; entry; entry = entry.expiryNext) {
      if (entry.expiresAt <= now) due.push(entry);
      else if (entry.expiresAt < next) next = entry.expiresAt;
    }
    for (const entry of due) this.delete(entry);
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
    for (const entry of due) entry.expire();
  };
}
