/**
 * Who is calling, and what they may do: authentication through the identity data plane's
 * edge cache, per-tenant rate limits and concurrent-job quotas, and job ids that belong to
 * the tenant that made them. Plugged into the API's authentication seam and resize chain.
 */
import { randomUUID } from 'node:crypto';
import type { AuthRefusal, IdentityClient, Quota } from '@ballast/app-identity';
import type { JobQueue } from '@ballast/app-queue';
import { type AppEnv, type Authenticate, annotate, clientSignal, HttpError, nodeRequest, retryAfter } from '@ballast/app-shared';
import type { RateLimitDecision, RateLimitPolicy } from '@ballast/backpressure';
import { rateLimitHeader, rateLimitPolicyHeader } from '@ballast/backpressure/hono';
import { errorBody, linkSignal } from '@ballast/common';
import type { Context, MiddlewareHandler } from 'hono';
import type { ApiEnv } from './options.ts';
import type { JobSlot, TenantQuotas } from './tenant-quota.ts';

/** The authenticated caller's quota and key, beside `c.var.tenant`: `c.get('caller')`. */
export interface Caller {
  /** The tenant's quota; absent when no quota applies. */
  readonly quota?: Quota;
  /** Display prefix of the key used (`blst_` + 4), for logs. */
  readonly keyPrefix?: string;
}

declare module 'hono' {
  interface ContextVariableMap {
    caller: Caller;
  }
}

/** Options of {@link identityAuthentication}. */
export interface IdentityAuthenticationOptions {
  /** The identity data plane: every `/v1` request must carry `Authorization: Bearer <key>`. */
  identity: IdentityClient;
  /** Per-tenant rate limits from each tenant's plan (429 beyond them). */
  quotas?: TenantQuotas;
  /**
   * What a request without an `Authorization` header gets: `false` answers 401; a quota
   * lets it in as tenant `anonymous` under that quota (shared by every anonymous caller).
   * @default false
   */
  anonymous?: Quota | false;
}

/**
 * The API's authentication seam filled by identity: sets `c.var.tenant` (and `caller`),
 * then spends one request of the tenant's rate. Refuses with 401 (missing, malformed or
 * unknown key; two `Authorization` headers), 403 (revoked key), 503 (the key cannot be
 * verified while identity data is unreachable) or 429 (over the tenant's rate, with
 * `Retry-After` and the RateLimit headers), each in the one error body, never quoting the key.
 */
export function identityAuthentication(options: IdentityAuthenticationOptions): Authenticate {
  const { identity, quotas } = options;
  return async function identityAuthentication(c, next) {
    const header = c.req.header('authorization');
    if (header === undefined && options.anonymous) {
      c.set('tenant', 'anonymous');
      c.set('caller', { quota: options.anonymous });
    } else {
      if (authorizationCount(c) > 1) throw refusal(SEVERAL);
      const decision = await identity.verify(header);
      if (!decision.ok) throw refusal(decision);
      c.set('tenant', decision.tenant.id);
      c.set('caller', { quota: decision.tenant.quota, keyPrefix: decision.prefix });
      annotate(c, { key: decision.prefix });
    }
    const quota = c.get('caller').quota;
    if (quotas === undefined || quota === undefined) return next();
    const limiter = quotas.limiter(quota);
    const decision = await quotas.rate(c.var.tenant, quota);
    if (!decision.allowed) return rateRefusal(c, quota, limiter.policy, decision);
    await next();
    c.res.headers.set('ratelimit-policy', policyHeader(limiter.policy));
    c.res.headers.set('ratelimit', rateLimitHeader(limiter.policy, decision));
  };
}

const SEVERAL: AuthRefusal = {
  ok: false,
  status: 401,
  code: 'ERR_BALLAST_AUTH_MALFORMED',
  message: 'the request carries more than one Authorization header; send one',
};

function refusal(refused: AuthRefusal): HttpError {
  const headers: Record<string, string> = {};
  if (refused.status === 401) headers['www-authenticate'] = 'Bearer realm="ballast"';
  if (refused.status === 503) headers['retry-after'] = '1';
  return new HttpError(refused.status, refused.code, refused.message, headers);
}

/** `Authorization` headers as sent: Node keeps only the first of several, so they are counted in the raw headers. */
function authorizationCount(c: Context<AppEnv>): number {
  const incoming = nodeRequest(c);
  if (!incoming) return 1;
  let n = 0;
  const raw = incoming.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === 'authorization') n++;
  return n;
}

/** A declared body larger than this, not yet received whole, is not drained after a refusal: the connection is closed instead. */
export const REFUSAL_DRAIN_BYTES: number = 64 * 1024;

/** Bodies of 429 answers by tenant, rate and wait (a handful per tenant), so a flood over its rate costs no JSON per refusal. */
const refusalBodies = new Map<string, string>();
const policyHeaders = new WeakMap<RateLimitPolicy, string>();

function policyHeader(policy: RateLimitPolicy): string {
  let header = policyHeaders.get(policy);
  if (header === undefined) policyHeaders.set(policy, (header = rateLimitPolicyHeader(policy)));
  return header;
}

/**
 * The 429 of a request over its tenant's rate, as cheap as it can be: answered before the
 * body is read, from a cached body, without an exception; the body is then drained when
 * it is small or already here (the connection stays open), else the connection is closed
 * so the body is never read.
 */
function rateRefusal(c: Context<AppEnv>, quota: Quota, policy: RateLimitPolicy, decision: RateLimitDecision): Response {
  const tenant = c.var.tenant;
  const wait = retryAfter(decision.retryAfterMs);
  const key = `${tenant}\n${quota.requestsPerSecond}\n${wait}`;
  let body = refusalBodies.get(key);
  if (body === undefined) {
    if (refusalBodies.size >= 10_000) refusalBodies.clear();
    const message = `tenant ${tenant} is over its rate of ${quota.requestsPerSecond} requests/s; retry after ${wait} s`;
    refusalBodies.set(key, (body = JSON.stringify(errorBody('ERR_BALLAST_RATE_LIMITED', message))));
  }
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'retry-after': wait,
    'ratelimit-policy': policyHeader(policy),
    ratelimit: rateLimitHeader(policy, decision),
  };
  if (!drainable(c)) headers.connection = 'close';
  return c.body(body, 429, headers);
}

/** True when the request's body is already received whole, or small enough to drain rather than close the connection. */
function drainable(c: Context<AppEnv>): boolean {
  const incoming = nodeRequest(c);
  if (!incoming || incoming.complete) return true;
  const length = Number(incoming.headers['content-length'] ?? Number.NaN);
  return length <= REFUSAL_DRAIN_BYTES; // NaN (chunked, unknown length) is not
}

/**
 * The tenant's concurrent-job quota and its fair share of the workers, in the resize chain
 * before admission: a quota slot is taken (429 `ERR_BALLAST_TOO_MANY_JOBS` when all are
 * held), then a place in the tenant's lane ({@link TenantLanes}: it waits while the
 * tenant's share of the worker slots is taken by its own earlier jobs; 504 when its
 * deadline passes first). Both are kept until the job reaches a final state: the end of
 * the request for sync, the job's result for async.
 */
export const tenantJobs = (quotas: TenantQuotas, queue: JobQueue): MiddlewareHandler<ApiEnv> =>
  async function tenantJobs(c, next) {
    const quota = c.get('caller')?.quota;
    if (quota === undefined) return next();
    const { deadlineMs } = c.var.request;
    const deadlineAt = Date.now() + deadlineMs;
    const quotaSlot = await quotas.acquireJob(c.var.tenant, quota, deadlineMs + 5000);
    if (!quotaSlot) {
      throw new HttpError(
        429,
        'ERR_BALLAST_TOO_MANY_JOBS',
        `tenant ${c.var.tenant} already has ${quota.concurrentJobs} jobs waiting or in progress, its plan's limit; retry when one finishes`,
        { 'retry-after': '1' },
      );
    }
    const slot = both(quotaSlot, await laneFor(c, quotas, deadlineMs).catch((error) => failAfter(quotaSlot, error)));
    // Time spent in the lane comes out of the request's deadline: admission and the job see what is left.
    c.var.request.deadlineMs = Math.max(1, deadlineAt - Date.now());
    await nextOrRelease(next, () => slot.release());
    const jobId = c.var.fields.jobId;
    if (c.res.status === 202 && typeof jobId === 'string') holdUntilDone(queue, jobId, slot, deadlineAt);
    else slot.release();
  };

/** A place in the tenant's lane, within the request's deadline and while its client is there. */
async function laneFor(c: Context<ApiEnv>, quotas: TenantQuotas, deadlineMs: number): Promise<JobSlot> {
  const now = quotas.lanes.tryTake(c.var.tenant);
  if (now) return now;
  const client = clientSignal(c);
  const linked = linkSignal([client], deadlineMs);
  try {
    return await quotas.lanes.take(c.var.tenant, linked.signal);
  } catch (error) {
    if (linked.signal.aborted && !client.aborted) {
      throw new HttpError(
        504,
        'ERR_BALLAST_DEADLINE',
        `tenant ${c.var.tenant}'s share of the workers stayed taken by its own earlier jobs for the whole ${deadlineMs} ms deadline; nothing was enqueued`,
      );
    }
    throw error;
  } finally {
    linked.dispose();
  }
}

function failAfter(slot: JobSlot, error: unknown): never {
  slot.release();
  throw error;
}

/** One slot releasing two. */
function both(a: JobSlot, b: JobSlot): JobSlot {
  return {
    release: () => {
      b.release();
      a.release();
    },
  };
}

/** Runs the rest of the chain; if it throws, what the request holds is given back (`release`) before the error goes on. */
export async function nextOrRelease(next: () => Promise<void>, release: () => void): Promise<void> {
  try {
    await next();
  } catch (error) {
    release();
    throw error;
  }
}

/** An async job keeps its tenant's slot until it reaches a final state (or its deadline passes). */
export function holdUntilDone(queue: JobQueue, id: string, slot: JobSlot, until: number): void {
  queue
    .wait(id, AbortSignal.timeout(Math.max(1, until - Date.now() + 1000)))
    .catch(() => {})
    .finally(() => slot.release());
}

/** A new job id owned by `tenant`: `<tenant>-<uuid>` (letters, digits, `_` and `-` only, as the gateway's job paths allow). */
export function ownedJobId(tenant: string): string {
  return `${tenant}-${randomUUID()}`;
}

/**
 * True when job `id` belongs to `tenant`. The owner is part of the id, so another
 * tenant's id is refused without reading the queue, and ids cannot be guessed (122
 * random bits).
 */
export function ownsJob(tenant: string, id: string): boolean {
  // The length pins where the tenant ends: tenant `a` cannot claim the jobs of a tenant `a-b`.
  return id.length === tenant.length + 37 && id.startsWith(tenant) && id.charCodeAt(tenant.length) === 45; // '-'
}
