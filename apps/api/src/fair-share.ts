/**
 * Fair share of the workers between clients: how many jobs one client may have waiting or
 * in progress, and how much costly work (AVIF at high effort, huge outputs) one client and
 * all clients together may have at once, so that one client's pathological requests cannot
 * take the capacity everyone else needs.
 */
import { availableParallelism } from 'node:os';
import type { JobQueue } from '@ballast/app-queue';
import { annotate, clientAddressOf, HttpError, retryAfter, SHED_HEADER } from '@ballast/app-shared';
import type { RedisScriptClient } from '@ballast/backpressure';
import { type Clock, finiteNumber, integer } from '@ballast/common';
import { TrustedProxies } from '@ballast/load-balancer';
import type { Context, MiddlewareHandler } from 'hono';
import { Counter, type Registry } from 'prom-client';
import { CostBudget, type CostBudgetOptions } from './cost-budget.ts';
import type { ApiEnv } from './options.ts';
import { type PlannedRendition, renditionCost } from './renditions/plan.ts';
import { readSetId, renditionJobId } from './renditions/set-id.ts';
import { type HeldSlots, LeasedSlots } from './slots.ts';
import { holdUntilDone, nextOrRelease } from './tenancy.ts';
import type { JobSlot } from './tenant-quota.ts';

/** Output pixels assumed for a job that names neither width nor height (its input's size is not known yet). */
export const UNKNOWN_OUTPUT_PIXELS = 1_000_000;

/**
 * Indicative CPU cost of one resize job, ms, from its parameters alone (before the body is
 * read): the output's pixels — `width` × `height`, or ¾ of a square when one is given, or
 * {@link UNKNOWN_OUTPUT_PIXELS} — encoded at the job's format and effort, by the same table
 * the brownout dimmer plans rendition sets with. Only its order of magnitude matters: AVIF
 * at effort 4 costs tens of times a JPEG of the same size.
 */
export function jobCostMs(resize: Readonly<Record<string, unknown>>): number {
  const width = typeof resize.width === 'number' ? resize.width : undefined;
  const height = typeof resize.height === 'number' ? resize.height : undefined;
  const pixels =
    width !== undefined && height !== undefined
      ? width * height
      : width !== undefined
        ? width * width * 0.75
        : height !== undefined
          ? (height * height) / 0.75
          : UNKNOWN_OUTPUT_PIXELS;
  const format = (typeof resize.format === 'string' ? resize.format : 'jpeg') as Parameters<typeof renditionCost>[1];
  const effort = typeof resize.effort === 'number' ? resize.effort : 0;
  return renditionCost(Math.sqrt(pixels / 0.75), format, effort);
}

/** Options of {@link FairShare}. */
export interface FairShareOptions {
  /** Conversions the workers run at once, system-wide: the defaults below scale with it. @default os.availableParallelism() */
  workerSlots?: number;
  /**
   * Jobs one anonymous client (one address) may have waiting or in progress at once;
   * beyond it, 429 `ERR_BALLAST_CLIENT_LIMIT`. Authenticated tenants are bounded by their
   * plan's concurrent-job quota instead. 0: no bound.
   * Set it above what a well-behaved client keeps in flight (its rate × its requests'
   * latency, up to their deadline).
   * @default 32 × workerSlots
   */
  maxJobsPerClient?: number;
  /** Indicative cost ({@link jobCostMs}) from which a request counts as costly, ms. @default 2000 */
  costlyMs?: number;
  /** Costly requests one client (tenant, or address when anonymous) may have in progress at once; beyond it, 429. @default 1 */
  maxCostlyPerClient?: number;
  /**
   * Costly requests over all clients at once; beyond it, 503 `ERR_BALLAST_OVERLOADED`
   * with `x-ballast-shed: costly`. Keeps the other worker slots for ordinary work.
   * @default max(1, floor(workerSlots / 2))
   */
  maxCostly?: number;
  /**
   * Peers whose `x-ballast-client` header names the client (the gateways): addresses,
   * CIDR ranges or `loopback`, `private`, `linklocal`. From any other peer, the peer's
   * own address is the client.
   * @default ['loopback', 'private'] (API servers sit on a private network behind the gateway)
   */
  trustedProxies?: readonly string[];
  /** An ioredis client: the counts are shared by every API server on the same Redis. @default counted in this process */
  redis?: RedisScriptClient;
  /** Prefix of the Redis keys (one hash tag, so a Redis Cluster keeps them on one slot). @default '{ballast:fair}:' */
  prefix?: string;
  /**
   * Cost budget of each anonymous client (one address): a token bucket of indicative
   * conversion time ({@link jobCostMs}) refilled at `msPerSec`, holding `burstMs`. A request
   * whose jobs cost more than the bucket holds now is refused 429 `ERR_BALLAST_CLIENT_LIMIT`
   * (`Retry-After`: until it would fit); one costing more than `burstMs` can never fit and
   * is refused 422 `ERR_BALLAST_TOO_COSTLY`. `false`: no budget (a load generator standing
   * for many clients from one address). Recommended at a public edge: a quarter of the
   * workers (`msPerSec: 250 × workerSlots`), `burstMs: 5000`.
   * @default false
   */
  anonymousBudget?: CostBudgetOptions | false;
  /** Cost budget of each tenant (keyed clients), as `anonymousBudget`. @default false */
  tenantBudget?: CostBudgetOptions | false;
  /** Clock of the budgets counted in this process. @default systemClock */
  clock?: Clock;
}

/** Why a request was refused its share. */
export type FairShareRefusal = 'clientJobs' | 'clientCostly' | 'costly' | 'budget' | 'tooCostly';

/** A snapshot of a {@link FairShare}. */
export interface FairShareStats {
  maxJobsPerClient: number;
  costlyMs: number;
  maxCostlyPerClient: number;
  maxCostly: number;
  /** Costly requests held now (in-process counting only; 0 when shared through Redis). */
  costlyHeld: number;
  refused: Record<FairShareRefusal, number>;
  redisErrors: number;
}

/** What a request took: one slot per job, each released when its job is over; the costly share goes with the last. */
export interface FairShareClaim {
  readonly slots: JobSlot[];
  releaseAll(): void;
}

const COSTLY = 'costly';
/** The claims of {@link FairShare.claim}, in order. */
const REFUSALS: readonly FairShareRefusal[] = ['clientJobs', 'clientCostly', 'costly'];

/**
 * Per-client fair share at the API's door, counted over every API server when given a
 * Redis client. A request is refused, before its body is read, when its client already
 * has `maxJobsPerClient` jobs waiting or in progress (429), when it is costly and its
 * client already has `maxCostlyPerClient` costly requests in progress (429), or when it
 * is costly and `maxCostly` costly requests are in progress over all clients (503, shed
 * reason `costly`). One client's costly requests therefore occupy at most
 * `maxCostlyPerClient` worker slots, and all costly work together at most `maxCostly`:
 * the other slots stay for ordinary work. With a cost budget (`anonymousBudget`,
 * `tenantBudget`: {@link CostBudget}), a request's indicative cost is then booked against its
 * client's bucket: beyond it 429, and a request dearer than the whole bucket 422. The slots
 * bound what a client holds at once; the budget bounds its share of the workers' time.
 */
export class FairShare {
  readonly maxJobsPerClient: number;
  readonly costlyMs: number;
  readonly maxCostlyPerClient: number;
  readonly maxCostly: number;
  readonly trusted: TrustedProxies;
  readonly #slots: LeasedSlots;
  /** The anonymous clients' and the tenants' cost budgets (undefined: none). */
  readonly budgets: { readonly anonymous?: CostBudget; readonly tenant?: CostBudget };
  readonly #refused: Record<FairShareRefusal, number> = { clientJobs: 0, clientCostly: 0, costly: 0, budget: 0, tooCostly: 0 };
  readonly #listeners = new Set<(reason: FairShareRefusal) => void>();

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: FairShareOptions = {}) {
    const slots = integer('workerSlots', options.workerSlots ?? availableParallelism(), { min: 1 });
    this.maxJobsPerClient = integer('maxJobsPerClient', options.maxJobsPerClient ?? 32 * slots, { min: 0 });
    this.costlyMs = finiteNumber('costlyMs', options.costlyMs ?? 2000, { min: 0 });
    this.maxCostlyPerClient = integer('maxCostlyPerClient', options.maxCostlyPerClient ?? 1, { min: 1 });
    this.maxCostly = integer('maxCostly', options.maxCostly ?? Math.max(1, Math.floor(slots / 2)), { min: 1 });
    this.trusted = new TrustedProxies(options.trustedProxies ?? ['loopback', 'private']);
    const prefix = options.prefix ?? '{ballast:fair}:';
    this.#slots = new LeasedSlots({ redis: options.redis, prefix });
    const counting = { redis: options.redis, prefix, clock: options.clock };
    const budget = (name: string, o: CostBudgetOptions | false | undefined) => (o ? new CostBudget(name, o, counting) : undefined);
    this.budgets = { anonymous: budget('anonymousBudget', options.anonymousBudget), tenant: budget('tenantBudget', options.tenantBudget) };
  }

  /** Calls `listener` with the reason of every refusal. @returns a function that unsubscribes. */
  onRefused(listener: (reason: FairShareRefusal) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Takes the share of a request of `client` (`anonymous` tells an address from a tenant)
   * that enqueues jobs of indicative costs `costsMs`, or throws the refusal's `HttpError`.
   * `holdMs` bounds how long a shared slot outlives an API server that died holding it.
   */
  async claim(client: { key: string; anonymous: boolean }, costsMs: readonly number[], holdMs: number): Promise<FairShareClaim> {
    const total = costsMs.reduce((a, b) => a + b, 0);
    const budget = client.anonymous ? this.budgets.anonymous : this.budgets.tenant;
    if (budget && !budget.fits(total)) throw this.#tooCostly(client.anonymous, budget, total);
    const costly = total >= this.costlyMs ? 1 : 0;
    const jobs = client.anonymous && this.maxJobsPerClient > 0 ? costsMs.length : 0;
    const claims = [
      { key: `jobs:${client.key}`, limit: this.maxJobsPerClient, units: jobs },
      { key: `${COSTLY}:${client.key}`, limit: this.maxCostlyPerClient, units: costly },
      { key: COSTLY, limit: this.maxCostly, units: costly },
    ];
    const grant = await this.#slots.acquire(claims, holdMs);
    if (grant.held === undefined) throw this.#refusal(REFUSALS[grant.refused] ?? 'costly', costsMs.length, total);
    const claim = claimOf(grant.held, costsMs.length, jobs > 0);
    if (budget) {
      const booked = await budget.book(client.key, total).catch((error: unknown) => {
        claim.releaseAll();
        throw error;
      });
      if (!booked.allowed) {
        claim.releaseAll();
        throw this.#overBudget(budget, total, booked.retryAfterMs);
      }
    }
    return claim;
  }

  stats(): FairShareStats {
    return {
      maxJobsPerClient: this.maxJobsPerClient,
      costlyMs: this.costlyMs,
      maxCostlyPerClient: this.maxCostlyPerClient,
      maxCostly: this.maxCostly,
      costlyHeld: this.#slots.held(COSTLY),
      refused: { ...this.#refused },
      redisErrors: this.#slots.redisErrors + (this.budgets.anonymous?.redisErrors ?? 0) + (this.budgets.tenant?.redisErrors ?? 0),
    };
  }

  /** Lets go of the budgets' buckets. */
  close(): void {
    this.budgets.anonymous?.[Symbol.dispose]();
    this.budgets.tenant?.[Symbol.dispose]();
  }

  #count(reason: FairShareRefusal): void {
    this.#refused[reason]++;
    for (const listener of this.#listeners) listener(reason);
  }

  /** 422: one request costs more than its client's whole budget. */
  #tooCostly(anonymous: boolean, budget: CostBudget, totalMs: number): HttpError {
    this.#count('tooCostly');
    const who = anonymous ? 'an anonymous client' : 'a tenant';
    return new HttpError(
      422,
      'ERR_BALLAST_TOO_COSTLY',
      `this request's conversions cost about ${Math.round(totalMs)} ms, more than the ${budget.burstMs} ms ${who} may book at once: ask for fewer pixels or a lower effort${anonymous ? ', or send an API key' : ''}`,
    );
  }

  /** 429: the client's budget does not hold this request's cost now. */
  #overBudget(budget: CostBudget, totalMs: number, retryAfterMs: number): HttpError {
    this.#count('budget');
    return new HttpError(
      429,
      'ERR_BALLAST_CLIENT_LIMIT',
      `this client has booked its share of conversion time (${Math.round(budget.msPerSec)} ms per second, ${budget.burstMs} ms at once); this request's ${Math.round(totalMs)} ms fit after the time given`,
      { 'retry-after': retryAfter(Math.max(1000, retryAfterMs)) },
    );
  }

  /** The answer to a refused claim, counted. */
  #refusal(reason: FairShareRefusal, jobs: number, totalMs: number): HttpError {
    this.#count(reason);
    const wait = retryAfter(Math.min(30_000, Math.max(1000, totalMs)));
    if (reason === 'clientJobs') {
      return new HttpError(
        429,
        'ERR_BALLAST_CLIENT_LIMIT',
        `this client already has up to ${this.maxJobsPerClient} jobs waiting or in progress, its share; ${jobs} more do not fit: retry when some finish`,
        { 'retry-after': '1' },
      );
    }
    if (reason === 'clientCostly') {
      return new HttpError(
        429,
        'ERR_BALLAST_CLIENT_LIMIT',
        `this client already has ${this.maxCostlyPerClient} costly conversion${this.maxCostlyPerClient === 1 ? '' : 's'} in progress (AVIF at high effort, very large outputs), its share: retry when it finishes, or ask for a cheaper one`,
        { 'retry-after': wait },
      );
    }
    return new HttpError(
      503,
      'ERR_BALLAST_OVERLOADED',
      `the workers already run ${this.maxCostly} costly conversion${this.maxCostly === 1 ? '' : 's'}, the most they take at once beside ordinary work: retry shortly, or ask for a cheaper one`,
      { 'retry-after': wait, [SHED_HEADER]: COSTLY },
    );
  }
}

/** Slots per job over `held`: each gives back its job unit; the last one gives back the costly share. */
function claimOf(held: HeldSlots, jobs: number, perJob: boolean): FairShareClaim {
  let open = jobs;
  const slots: JobSlot[] = Array.from({ length: jobs }, () => {
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        if (perJob) held.release(0, 1);
        if (--open === 0) held.releaseAll();
      },
    };
  });
  return {
    slots,
    releaseAll: () => {
      for (const slot of slots) slot.release();
      held.releaseAll();
    },
  };
}

/** The client a request counts against: its tenant, or, for `anonymous`, its address (from the gateway's `x-ballast-client`). */
export function clientOf(c: Context<ApiEnv>, trusted: TrustedProxies): { key: string; anonymous: boolean } {
  const tenant = c.var.tenant;
  if (tenant !== 'anonymous') return { key: `tenant:${tenant}`, anonymous: false };
  return { key: `address:${clientAddressOf(c, trusted)}`, anonymous: true };
}

/**
 * The fair share of a single-image request (`POST /v1/resize`): claimed before admission
 * and the body; given back when the answer is sent, or, for an async job, when the job
 * reaches its final state (or its deadline passes).
 */
export const fairShareGate = (share: FairShare, queue: JobQueue): MiddlewareHandler<ApiEnv> =>
  async function fairShare(c, next) {
    const { deadlineMs, resize } = c.var.request;
    const cost = jobCostMs(resize);
    const claim = await share.claim(clientOf(c, share.trusted), [cost], deadlineMs + 5000);
    if (cost >= share.costlyMs) annotate(c, { costly: true });
    const deadlineAt = Date.now() + deadlineMs;
    await nextOrRelease(next, () => claim.releaseAll());
    const jobId = c.var.fields.jobId;
    const slot = claim.slots[0];
    if (c.res.status === 202 && typeof jobId === 'string' && slot) holdUntilDone(queue, jobId, slot, deadlineAt);
    else claim.releaseAll();
  };

/**
 * The fair share of a rendition set (`POST /v1/renditions`), after its plan: one job slot
 * per rendition to make, costly when the set's renditions together are. Given back when
 * the answer is sent, or, for an async set, job by job as each reaches its final state.
 */
export const fairShareSets = (share: FairShare, queue: JobQueue): MiddlewareHandler<ApiEnv> =>
  async function fairShareSets(c, next) {
    const { deadlineMs } = c.var.renditionRequest;
    const costs = c.var.renditionPlan.plan.renditions
      .filter((r: PlannedRendition) => r.dropped === undefined)
      .map((r) => renditionCost(r.width, r.format, r.plannedEffort));
    const claim = await share.claim(clientOf(c, share.trusted), costs, deadlineMs + 5000);
    const deadlineAt = Date.now() + deadlineMs;
    await nextOrRelease(next, () => claim.releaseAll());
    const setId = c.var.fields.setId;
    const set = c.res.status === 202 && typeof setId === 'string' ? readSetId(c.var.tenant, setId) : undefined;
    if (!set) return claim.releaseAll();
    const slots = [...claim.slots];
    set.entries.forEach((entry, i) => {
      const slot = entry.state === 'queued' ? slots.pop() : undefined;
      if (slot) holdUntilDone(queue, renditionJobId(set.tenant, set.uuid, i), slot, deadlineAt);
    });
    for (const slot of slots) slot.release();
  };

/** `ballast_api_fair_share_refused_total{reason}`: requests refused their client's or the costly lane's share. */
export function fairShareMetrics(registry: Registry, share: FairShare): () => void {
  const refused = new Counter({
    name: 'ballast_api_fair_share_refused_total',
    help: "Requests refused by fair share: clientJobs, clientCostly and budget (429, the client is over its share), costly (503, the costly lane is full), tooCostly (422, dearer than the client's whole cost budget)",
    labelNames: ['reason'],
    registers: [registry],
  });
  return share.onRefused((reason) => refused.inc({ reason }));
}
