/**
 * Attributes the process's CPU time to the jobs running in it. libvips runs each
 * conversion on its own threads, so no per-thread counter sees a job's whole cost;
 * instead, at every job start and end the CPU consumed since the previous event is
 * shared equally among the jobs that were running. The shares add up to the CPU the
 * process spent while any job ran: what a bill by CPU time needs.
 */
export class CpuMeter {
  readonly #active = new Map<number, number>();
  readonly #read: () => number;
  #last: number;
  #next = 0;

  /** @param read CPU time consumed so far by the process, in ms (user + system). */
  constructor(read: () => number = processCpuMs) {
    this.#read = read;
    this.#last = read();
  }

  /** Starts metering one job; returns its token. */
  begin(): number {
    this.#settle();
    const token = ++this.#next;
    this.#active.set(token, 0);
    return token;
  }

  /** Ends metering; returns the CPU ms attributed to the job. */
  end(token: number): number {
    this.#settle();
    const ms = this.#active.get(token) ?? 0;
    this.#active.delete(token);
    return ms;
  }

  #settle(): void {
    const now = this.#read();
    const delta = now - this.#last;
    this.#last = now;
    if (this.#active.size === 0 || delta <= 0) return;
    const share = delta / this.#active.size;
    for (const [token, ms] of this.#active) this.#active.set(token, ms + share);
  }
}

/** User + system CPU time of this process, ms. */
export function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
