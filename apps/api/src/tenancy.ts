/**
 * Who is calling, and what they may do: authentication through the identity data plane's
 * edge cache, per-tenant rate limits, and job ids that belong to the tenant that made them.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AuthRefusal, IdentityClient, Quota } from '@ballast/app-identity';
import { rateLimitHeader, rateLimitPolicyHeader } from '@ballast/backpressure/hono';
import type { Context, MiddlewareHandler } from 'hono';
import type { AuthResult } from './app.ts';
import { errorBody } from './http.ts';
import type { TenantQuotas } from './tenant-quota.ts';

/** The authenticated caller of a request: `c.get('caller')`. */
export interface Caller {
  /** Tenant id (`anonymous` for requests without a key where those are let in). */
  readonly tenant: string;
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

/** Options of {@link authentication}. */
export interface AuthenticationOptions {
  /** The identity data plane: every request must carry `Authorization: Bearer <key>`. */
  identity?: IdentityClient;
  /**
   * What a request without an `Authorization` header gets when `identity` is set: `false`
   * answers 401; a quota lets it in as tenant `anonymous` under that quota (shared by
   * every anonymous caller). Without `identity`, every caller is `anonymous`. @default false
   */
  anonymous?: Quota | false;
  /** The older hook form, used when `identity` is not set (tests, custom schemes). */
  authenticate?: (request: Request) => AuthResult | Promise<AuthResult>;
}

/**
 * Authenticates every request it covers and sets `caller`; refuses with 401 (missing,
 * malformed or unknown key; two `Authorization` headers), 403 (revoked key) or 503 (the
 * key cannot be verified while identity data is unreachable), each with the error body and
 * a message that never contains the key.
 */
export const authentication = (options: AuthenticationOptions): MiddlewareHandler =>
  async function authentication(c, next) {
    const identity = options.identity;
    if (identity === undefined) {
      const result = options.authenticate ? await options.authenticate(c.req.raw) : { tenant: 'anonymous' };
      if ('reject' in result) return c.json(errorBody('ERR_BALLAST_AUTH', result.reject.message), result.reject.status);
      c.set('caller', { tenant: result.tenant });
      return next();
    }
    const header = c.req.header('authorization');
    if (header === undefined && options.anonymous) {
      c.set('caller', { tenant: 'anonymous', quota: options.anonymous });
      return next();
    }
    if (authorizationCount(c) > 1) return refuse(c, SEVERAL);
    const decision = await identity.verify(header);
    if (!decision.ok) return refuse(c, decision);
    c.set('caller', { tenant: decision.tenant.id, quota: decision.tenant.quota, keyPrefix: decision.prefix });
    return next();
  };

const SEVERAL: AuthRefusal = {
  ok: false,
  status: 401,
  code: 'ERR_BALLAST_AUTH_MALFORMED',
  message: 'the request carries more than one Authorization header; send one',
};

function refuse(c: Context, refusal: AuthRefusal): Response {
  if (refusal.status === 401) c.header('www-authenticate', 'Bearer realm="ballast"');
  if (refusal.status === 503) c.header('retry-after', '1');
  return c.json(errorBody(refusal.code, refusal.message), refusal.status);
}

/** `Authorization` headers as sent: Node keeps only the first of several, so they are counted in the raw headers. */
function authorizationCount(c: Context): number {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming) return 1;
  let n = 0;
  const raw = incoming.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === 'authorization') n++;
  return n;
}

/**
 * The tenant's rate limit from its plan: 429 with `Retry-After`, `RateLimit-Policy` and
 * `RateLimit` beyond it; the RateLimit headers on every answer. Callers without a quota pass.
 */
export const tenantRateLimit = (quotas: TenantQuotas): MiddlewareHandler =>
  async function tenantRateLimit(c, next) {
    const caller = c.get('caller');
    if (caller?.quota === undefined) return next();
    const limiter = quotas.limiter(caller.quota);
    const decision = await quotas.rate(caller.tenant, caller.quota);
    const policy = rateLimitPolicyHeader(limiter.policy);
    const state = rateLimitHeader(limiter.policy, decision);
    if (!decision.allowed) {
      const retryAfter = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
      const message = `tenant ${caller.tenant} is over its rate of ${caller.quota.requestsPerSecond} requests/s; retry after ${retryAfter} s`;
      return c.json(errorBody('ERR_BALLAST_RATE_LIMITED', message), 429, {
        'retry-after': retryAfter,
        'ratelimit-policy': policy,
        ratelimit: state,
      });
    }
    await next();
    c.res.headers.set('ratelimit-policy', policy);
    c.res.headers.set('ratelimit', state);
  };

/** A new job id owned by `tenant`: `<tenant>.<uuid>`. */
export function ownedJobId(tenant: string): string {
  return `${tenant}.${randomUUID()}`;
}

/**
 * True when job `id` belongs to `tenant`. The owner is part of the id, so another
 * tenant's id is refused without reading the queue, and ids cannot be guessed (122
 * random bits).
 */
export function ownsJob(tenant: string, id: string): boolean {
  return id.length === tenant.length + 37 && id.startsWith(tenant) && id.charCodeAt(tenant.length) === 46; // '.'
}
