/**
 * The discrete-event core: a binary min-heap of timed callbacks and the virtual clock
 * they advance. Events at the same instant run in the order they were scheduled, so a
 * run is a pure function of its seed.
 */
import type { Clock } from '@ballast/common';

interface Event {
  at: number;
  seq: number;
  run: () => void;
}

export class EventQueue implements Clock {
  #heap: Event[] = [];
  #seq = 0;
  #now = 0;

  /** Virtual milliseconds since the start of the run; this object is the clock injected into the balancer. */
  now(): number {
    return this.#now;
  }

  get size(): number {
    return this.#heap.length;
  }

  /** Schedules `run` at virtual time `at` (never earlier than now). */
  at(at: number, run: () => void): void {
    const event: Event = { at: Math.max(at, this.#now), seq: this.#seq++, run };
    const heap = this.#heap;
    let i = heap.length;
    heap.push(event);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (p.at < event.at || (p.at === event.at && p.seq < event.seq)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = event;
  }

  /** Runs events in time order until none are left or the next is after `until`. Returns events run. */
  run(until = Number.POSITIVE_INFINITY): number {
    let count = 0;
    while (this.#heap.length > 0 && this.#heap[0]!.at <= until) {
      const event = this.#pop();
      this.#now = event.at;
      event.run();
      count++;
    }
    return count;
  }

  #pop(): Event {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      const n = heap.length;
      while (true) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        let c = l;
        if (r < n && (heap[r]!.at < heap[l]!.at || (heap[r]!.at === heap[l]!.at && heap[r]!.seq < heap[l]!.seq))) c = r;
        const child = heap[c]!;
        if (last.at < child.at || (last.at === child.at && last.seq < child.seq)) break;
        heap[i] = child;
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }
}
