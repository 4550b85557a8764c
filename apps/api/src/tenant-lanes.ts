import { availableParallelism } from 'node:os';
import { integer } from '@ballast/common';
import type { JobSlot } from './tenant-quota.ts';

/** Options of {@link TenantLanes}. */
export interface TenantLanesOptions {
  /** Conversions the workers run at once: the slots the tenants share. @default os.availableParallelism() */
  workerSlots?: number;
}

/** Counters of a {@link TenantLanes}. */
export interface TenantLanesStats {
  workerSlots: number;
  /** Tenants with jobs in the workers' queue or waiting for their share now. */
  activeTenants: number;
  /** Jobs in the workers' queue or in progress now, over all tenants. */
  held: number;
  /** Jobs waiting for their tenant's share now. */
  waiting: number;
  /** Jobs given their place in the queue, since creation. */
  granted: number;
  /** Jobs that had to wait for their tenant's share, since creation. */
  waited: number;
  /** Jobs whose wait ended without a share (deadline passed, client left), since creation. */
  abandoned: number;
}

interface Waiter {
  grant(slot: JobSlot): void;
}

/**
 * A fair share of the worker slots per tenant, in front of the shared FIFO queue: a tenant
 * may have at most `max(1, floor(workerSlots / active tenants))` jobs in the queue (waiting
 * for a worker or in progress) at once. Its further jobs wait here, in the tenant's own
 * lane, and enter the queue one by one as its earlier ones finish; the lanes are served
 * round robin. A flood from one tenant, even within its rate and concurrent-job quota,
 * therefore never stands in the queue ahead of another tenant's job: that job waits at
 * most for a conversion already running. Alone, a tenant may use every slot.
 *
 * Counted in this process: API servers sharing one object (the embedded mode) share the
 * lanes; in the distributed mode each API server keeps its own, so a tenant's jobs in the
 * queue are bounded by its share times the number of API servers.
 */
export class TenantLanes {
  readonly workerSlots: number;
  readonly #held = new Map<string, number>();
  /** Waiters per tenant; the map's order is the round robin (a tenant served moves to the end). */
  readonly #waiting = new Map<string, Waiter[]>();
  #total = 0;
  #granted = 0;
  #queued = 0;
  #waited = 0;
  #abandoned = 0;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: TenantLanesOptions = {}) {
    this.workerSlots = integer('workerSlots', options.workerSlots ?? availableParallelism(), { min: 1 });
  }

  /** The jobs each active tenant may have in the queue now (a tenant not yet active counted in). */
  share(tenant?: string): number {
    let active = this.#activeCount();
    if (tenant !== undefined && !this.#isActive(tenant)) active++;
    return Math.max(1, Math.floor(this.workerSlots / Math.max(1, active)));
  }

  /**
   * A place in the queue for one job of `tenant`: at once when the tenant is under its
   * share and nobody of it waits before, else once its turn comes. Release the slot when
   * the job has reached its final state. Rejects with `signal`'s reason if it aborts first.
   */
  take(tenant: string, signal?: AbortSignal): Promise<JobSlot> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const now = this.tryTake(tenant);
    if (now) return Promise.resolve(now);
    this.#waited++;
    return new Promise<JobSlot>((resolve, reject) => {
      const waiter: Waiter = {
        grant: (slot) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(slot);
        },
      };
      const onAbort = (): void => {
        this.#abandoned++;
        this.#remove(tenant, waiter);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const lane = this.#waiting.get(tenant);
      if (lane) lane.push(waiter);
      else this.#waiting.set(tenant, [waiter]);
      this.#queued++;
    });
  }

  /** A place in the queue for one job of `tenant` if it can have one at once (see {@link take}), else undefined. */
  tryTake(tenant: string): JobSlot | undefined {
    return !this.#waiting.has(tenant) && this.#heldBy(tenant) < this.share(tenant) ? this.#grant(tenant) : undefined;
  }

  stats(): TenantLanesStats {
    return {
      workerSlots: this.workerSlots,
      activeTenants: this.#activeCount(),
      held: this.#total,
      waiting: this.#queued,
      granted: this.#granted,
      waited: this.#waited,
      abandoned: this.#abandoned,
    };
  }

  #grant(tenant: string): JobSlot {
    this.#held.set(tenant, this.#heldBy(tenant) + 1);
    this.#total++;
    this.#granted++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#total--;
        const left = this.#heldBy(tenant) - 1;
        if (left > 0) this.#held.set(tenant, left);
        else this.#held.delete(tenant);
        this.#dispatch();
      },
    };
  }

  /** Lets waiting jobs in, round robin over the lanes, while their tenants are under the share. */
  #dispatch(): void {
    let progressed = true;
    while (progressed) {
      progressed = false;
      const share = this.share();
      for (const [tenant, lane] of this.#waiting) {
        if (this.#heldBy(tenant) >= share) continue;
        const waiter = lane.shift() as Waiter;
        this.#queued--;
        this.#waiting.delete(tenant);
        if (lane.length > 0) this.#waiting.set(tenant, lane); // to the end of the round
        waiter.grant(this.#grant(tenant));
        progressed = true;
        break;
      }
    }
  }

  #remove(tenant: string, waiter: Waiter): void {
    const lane = this.#waiting.get(tenant);
    const at = lane?.indexOf(waiter) ?? -1;
    if (!lane || at === -1) return;
    lane.splice(at, 1);
    this.#queued--;
    if (lane.length === 0) {
      this.#waiting.delete(tenant);
      this.#dispatch(); // one tenant fewer: the others' share may have grown
    }
  }

  #heldBy(tenant: string): number {
    return this.#held.get(tenant) ?? 0;
  }

  #isActive(tenant: string): boolean {
    return this.#held.has(tenant) || this.#waiting.has(tenant);
  }

  #activeCount(): number {
    let n = this.#held.size;
    for (const tenant of this.#waiting.keys()) if (!this.#held.has(tenant)) n++;
    return n;
  }
}
