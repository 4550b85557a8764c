import type { Clock } from './clock.ts';
import { MAX_TIMER_MS } from './validate.ts';

/** An entry of a {@link DeadlineList}: a call with the time it must end by. */
export interface DeadlineEntry {
  /** Clock time at which the call times out; `Infinity` for none. */
  deadline: number;
  prev: DeadlineEntry | undefined;
  next: DeadlineEntry | undefined;
}

/**
 * Calls in flight that share one timeout (those of one breaker, one timeout policy), in
 * start order, with one timer for all their deadlines instead of one per call. Every call
 * has the same timeout, so start order is deadline order: the first entry is always the next to expire. Adding
 * and removing are O(1) (a doubly linked list); the timer is armed for the first
 * entry and, when it fires, expires what is due and re-arms for the new first entry.
 * At high call rates that is one timer callback per timeout period rather than one
 * timer set and cleared per call.
 */
export class DeadlineList<T extends DeadlineEntry> {
  readonly #clock: Clock;
  readonly #onExpire: (entry: T) => void;
  #head: T | undefined;
  #tail: T | undefined;
  #size = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  readonly #unref: boolean;

  /**
   * @param onExpire called for each entry whose deadline passed (already removed).
   * @param options.unref lets the process exit while calls wait on the timer. @default true
   */
  constructor(clock: Clock, onExpire: (entry: T) => void, options: { unref?: boolean } = {}) {
    this.#clock = clock;
    this.#onExpire = onExpire;
    this.#unref = options.unref ?? true;
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
    this.#timer = setTimeout(this.#expire, Math.min(MAX_TIMER_MS, Math.max(0, deadline - this.#clock.now())));
    if (this.#unref) this.#timer.unref?.();
  }

  readonly #expire = (): void => {
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
  };
}
