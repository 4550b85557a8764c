/**
 * The limiter's wait queue: one intrusive doubly linked list per priority level, so
 * enqueue, dequeue from either end and removal of an aborted waiter are all O(1)
 * and allocate nothing beyond the waiter itself.
 */

/** Priority of a request; `critical` is served first and evicted last. */
export type Priority = 'critical' | 'high' | 'normal' | 'low';

/** Priority levels, highest first. */
export const PRIORITIES: readonly Priority[] = ['critical', 'high', 'normal', 'low'];

/** The level index of `priority` (0 is highest), or -1 when it is not a priority. */
export function priorityLevel(priority: unknown): number {
  switch (priority) {
    case 'critical':
      return 0;
    case 'high':
      return 1;
    case 'normal':
      return 2;
    case 'low':
      return 3;
    default:
      return -1;
  }
}

/** A node of the queue. */
export interface QueueNode {
  prev: QueueNode | undefined;
  next: QueueNode | undefined;
  level: number;
  /** True while the node is in a queue. */
  queued: boolean;
}

export class WaitQueue<T extends QueueNode> {
  readonly #heads: Array<T | undefined> = [undefined, undefined, undefined, undefined];
  readonly #tails: Array<T | undefined> = [undefined, undefined, undefined, undefined];
  readonly #sizes: number[] = [0, 0, 0, 0];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Waiters per priority level, highest first. */
  sizes(): number[] {
    return [...this.#sizes];
  }

  push(node: T): void {
    const level = node.level;
    const tail = this.#tails[level];
    node.prev = tail;
    node.next = undefined;
    if (tail) tail.next = node;
    else this.#heads[level] = node;
    this.#tails[level] = node;
    node.queued = true;
    this.#sizes[level]!++;
    this.#size++;
  }

  remove(node: T): void {
    if (!node.queued) return;
    const level = node.level;
    if (node.prev) node.prev.next = node.next;
    else this.#heads[level] = node.next as T | undefined;
    if (node.next) node.next.prev = node.prev;
    else this.#tails[level] = node.prev as T | undefined;
    node.prev = node.next = undefined;
    node.queued = false;
    this.#sizes[level]!--;
    this.#size--;
  }

  /** Removes and returns the oldest (or, with `newest`, the newest) waiter of the highest non-empty level. */
  shift(newest: boolean): T | undefined {
    for (let level = 0; level < 4; level++) {
      const node = newest ? this.#tails[level] : this.#heads[level];
      if (node) {
        this.remove(node);
        return node;
      }
    }
    return undefined;
  }

  /** The oldest (or, with `newest`, the newest) waiter of the highest non-empty level, left in place. */
  peek(newest: boolean): T | undefined {
    for (let level = 0; level < 4; level++) {
      const node = newest ? this.#tails[level] : this.#heads[level];
      if (node) return node;
    }
    return undefined;
  }

  /** The oldest waiter of `level`, left in place. */
  head(level: number): T | undefined {
    return this.#heads[level];
  }

  /** Waiters at `level` or any higher priority (lower index). */
  sizeUpTo(level: number): number {
    let size = 0;
    for (let l = 0; l <= level; l++) size += this.#sizes[l] as number;
    return size;
  }

  /** The newest waiter of the lowest non-empty level strictly below `level`, the one to evict for a more urgent request. */
  victimBelow(level: number): T | undefined {
    for (let l = 3; l > level; l--) {
      const node = this.#tails[l];
      if (node) return node;
    }
    return undefined;
  }

  /** Removes and returns every waiter. */
  drain(): T[] {
    const out: T[] = [];
    for (let node = this.shift(false); node; node = this.shift(false)) out.push(node);
    return out;
  }
}
