import type { Clock } from '@ballast/common';

/** An entry of {@link InFlight}: a call with the time it must end by. */
export interface InFlightEntry {
  /** Clock time at which the call times out; `Infinity` for none. */
  deadline: number;
  prev: InFlightEntry | undefined;
  next: InFlightEntry | undefined;
}

/**
 * The calls in flight on one breaker, in start order, with one timer for all their
 * timeouts instead of one per call. Every call of a breaker has the same timeout, so
 * start order is deadline order: the first entry is always the next to expire. Adding
 * and removing are O(1) (a doubly linked list); the timer is armed for the first
 * entry and, when it fires, expires what is due and re-arms for the new first entry.
 * At high call rates that is one timer callback per timeout period rather than one
 * timer set and cleared per call.
 */
export class InFlight<T extends InFlightEntry> {
  readonly #clock: Clock;
  readonly #onExpire: (entry: T) => void;
  #head: T | undefined;
  #tail: T | undefined;
  #size = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(clock: Clock, onExpire: (entry: T) => void) {
    this.#clock = clock;
    this.#onExpire = onExpire;
  }

  get size(): number {
    return this.#size;
  }

  /** Appends `entry`; its deadline must not be earlier than any entry already added. */
  add(entry: T): void {
    entry.prev = this.#tail;
    entry.next = undefined;
    if (this.#tail === undefined) this.#head = entry;
    else this.#tail.next = entry;
    this.#tail = entry;
    this.#size++;
    if (this.#timer === undefined && entry.deadline !== Number.POSITIVE_INFINITY) this.#arm(entry.deadline);
  }

  /** Removes `entry`, which must be in the list. */
  remove(entry: T): void {
    const { prev, next } = entry;
    if (prev === undefined) this.#head = next as T | undefined;
    else prev.next = next;
    if (next === undefined) this.#tail = prev as T | undefined;
    else next.prev = prev;
    entry.prev = undefined;
    entry.next = undefined;
    this.#size--;
  }

  /** Every entry, oldest first (a copy: callers may remove while iterating). */
  entries(): T[] {
    const out: T[] = [];
    for (let e = this.#head; e !== undefined; e = e.next as T | undefined) out.push(e);
    return out;
  }

  /** Clears the timer; entries stay. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(deadline: number): void {
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, deadline - this.#clock.now()));
    this.#timer.unref?.();
  }

  #expire(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    let head = this.#head;
    while (head !== undefined && head.deadline <= now) {
      this.remove(head);
      this.#onExpire(head);
      head = this.#head;
    }
    if (head !== undefined && this.#timer === undefined && head.deadline !== Number.POSITIVE_INFINITY) {
      this.#arm(head.deadline);
    }
  }
}
