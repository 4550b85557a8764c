import { createHash, timingSafeEqual } from 'node:crypto';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { Counter, Registry } from 'prom-client';
import { redactKeys } from './key.ts';
import { IdentityError, isIdentityError, PLANS, type Quota } from './model.ts';
import type { ChangeRelay } from './relay.ts';
import type { IdentityStore, TenantUpdate } from './store.ts';

/** One structured log entry. */
export type AdminLogEntry = Record<string, unknown> & { level: 'info' | 'warn' | 'error'; service: string; msg: string };

/** Options of {@link createManagementApi}. */
export interface ManagementApiOptions {
  store: IdentityStore;
  /** Publishes each change to the data plane before the answer; without it, changes are only stored. */
  relay?: ChangeRelay;
  /** The admin token every `/v1` request must carry as `Authorization: Bearer <token>`; at least 16 characters. */
  adminToken: string;
  /** How long an answer waits for its change to reach the feed, ms; past it the relay keeps trying in the background. @default 2000 */
  publishTimeoutMs?: number;
  /** Largest request body, bytes. @default 16384 */
  maxBodyBytes?: number;
  /** Log sink: one entry per request (never a key or a token). @default none */
  log?: (entry: AdminLogEntry) => void;
  registry?: Registry;
  /** Name in logs. @default 'identity' */
  name?: string;
}

/** The management plane's HTTP surface. */
export interface ManagementApi {
  readonly app: Hono;
  readonly registry: Registry;
}

const LIMITS = {
  requestsPerSecond: { min: 0.001, max: 1_000_000, integer: false },
  concurrentJobs: { min: 1, max: 1_000_000, integer: true },
  monthlyCpuSeconds: { min: 0, max: 1e15, integer: true },
} as const;

/**
 * The management plane (admin only): tenants, plans, API keys.
 *
 * | Route | Does |
 * |---|---|
 * | `POST /v1/tenants` `{ name, plan?, quota? }` | creates a tenant (201) |
 * | `GET /v1/tenants`, `GET /v1/tenants/:id` | lists tenants / one tenant |
 * | `PATCH /v1/tenants/:id` `{ plan?, quota? }` | changes the plan (its quota replaces the old) and/or quota overrides |
 * | `POST /v1/tenants/:id/keys` `{ name? }` | issues a key (201); the answer is the only place the key ever appears |
 * | `GET /v1/tenants/:id/keys` | the tenant's keys: id, display prefix, name, status, dates |
 * | `DELETE /v1/keys/:id` | revokes a key (idempotent) |
 */
export function createManagementApi(options: ManagementApiOptions): ManagementApi {
  const { store, relay } = options;
  if (typeof options.adminToken !== 'string' || options.adminToken.length < 16) {
    throw new IdentityError(400, 'ERR_BALLAST_INVALID_OPTION', 'adminToken must be a string of at least 16 characters');
  }
  const expected = digest(options.adminToken);
  const publishTimeoutMs = options.publishTimeoutMs ?? 2000;
  const maxBodyBytes = options.maxBodyBytes ?? 16_384;
  const name = options.name ?? 'identity';
  const log = options.log ?? (() => {});
  const registry = options.registry ?? new Registry();
  const requests = new Counter({
    name: 'ballast_identity_admin_requests_total',
    help: 'Management-plane requests by route and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  });

  const app = new Hono();
  app.use('*', async function accessLog(c, next) {
    const started = performance.now();
    await next();
    const route = c.req.routePath;
    requests.inc({ route, status: c.res.status });
    log({
      level: 'info',
      service: name,
      msg: 'admin request',
      method: c.req.method,
      path: redactKeys(c.req.path),
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  });
  app.get('/healthz', (c) => c.json({ ok: true, service: name }));
  app.get('/readyz', async (c) => {
    try {
      await store.ping();
      return c.json({ ready: true, relay: relay?.stats() });
    } catch {
      return c.json({ ready: false, store: 'unavailable' }, 503);
    }
  });
  app.get('/metrics', async (c) => c.text(await registry.metrics(), 200, { 'content-type': registry.contentType }));

  app.use('/v1/*', adminOnly(expected));
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: (c) => c.json(errorBody('ERR_BALLAST_BODY_TOO_LARGE', `the body is over ${maxBodyBytes} bytes`), 413),
    }),
  );
  const published = async (c: Context): Promise<void> => {
    if (!relay) return;
    const version = await withTimeout(relay.flush(), publishTimeoutMs).catch(() => undefined);
    c.header('x-identity-published', version === undefined ? 'pending' : 'true');
  };

  app.post('/v1/tenants', async (c) => {
    const body = await readJson(c, ['name', 'plan', 'quota']);
    const tenant = await store.createTenant({ name: tenantName(body.name), plan: plan(body.plan) ?? 'free', quota: quota(body.quota) });
    await published(c);
    c.header('location', `/v1/tenants/${tenant.id}`);
    return c.json(tenant, 201);
  });
  app.get('/v1/tenants', async (c) => c.json({ tenants: await store.listTenants() }));
  app.get('/v1/tenants/:id', async (c) => c.json(await store.getTenant(c.req.param('id'))));
  app.patch('/v1/tenants/:id', async (c) => {
    const body = await readJson(c, ['plan', 'quota']);
    const update: TenantUpdate = {};
    const p = plan(body.plan);
    if (p !== undefined) update.plan = p;
    const q = quota(body.quota);
    if (q !== undefined) update.quota = q;
    if (p === undefined && q === undefined) throw invalid('the body must set plan, quota or both');
    const tenant = await store.updateTenant(c.req.param('id'), update);
    await published(c);
    return c.json(tenant);
  });
  app.post('/v1/tenants/:id/keys', async (c) => {
    const body = await readJson(c, ['name'], true);
    const issued = await store.issueKey(c.req.param('id'), { name: keyName(body.name) });
    await published(c);
    c.header('cache-control', 'no-store');
    return c.json({ ...issued.info, key: issued.key, note: 'This is the only time the key is shown: store it now.' }, 201);
  });
  app.get('/v1/tenants/:id/keys', async (c) => c.json({ keys: await store.listKeys(c.req.param('id')) }));
  app.delete('/v1/keys/:id', async (c) => {
    const info = await store.revokeKey(c.req.param('id'));
    await published(c);
    return c.json(info);
  });

  app.notFound((c) => c.json(errorBody('ERR_BALLAST_NOT_FOUND', `no route ${c.req.method} ${redactKeys(c.req.path)}`), 404));
  app.onError((error, c) => {
    if (isIdentityError(error)) return c.json(errorBody(error.code, redactKeys(error.message)), error.status);
    log({ level: 'error', service: name, msg: 'admin request failed', error: redactKeys(String(error)) });
    return c.json(errorBody('ERR_BALLAST_INTERNAL', 'internal error'), 500);
  });
  return { app, registry };
}

/** The error body every Ballast service answers with. */
function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Admin requests only: the token is compared as SHA-256 digests in constant time (no length leak either). */
function adminOnly(expected: Buffer): MiddlewareHandler {
  return async function adminOnly(c, next) {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer +(\S+)$/i.exec(header);
    if (!match) {
      return c.json(errorBody('ERR_BALLAST_AUTH_MISSING', 'admin token required: send Authorization: Bearer <admin token>'), 401);
    }
    if (!timingSafeEqual(digest(match[1] as string), expected)) {
      return c.json(errorBody('ERR_BALLAST_AUTH_ADMIN', 'the admin token is not valid'), 401);
    }
    await next();
  };
}

function invalid(message: string): IdentityError {
  return new IdentityError(400, 'ERR_BALLAST_INVALID_OPTION', message);
}

async function readJson(c: Context, allowed: readonly string[], optional = false): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type') ?? '';
  const text = await c.req.text(); // bounded by the bodyLimit middleware
  if (text.trim() === '' && optional) return {};
  if (!type.toLowerCase().startsWith('application/json')) {
    throw new IdentityError(415, 'ERR_BALLAST_CONTENT_TYPE', `content-type must be application/json, got ${describe(type)}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalid('the body is not valid JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('the body must be a JSON object');
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw invalid(`unknown field ${JSON.stringify(key.slice(0, 64))}; expected ${allowed.join(', ')}`);
  }
  return body as Record<string, unknown>;
}

function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function text(field: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > max || hasControl(value)) {
    throw invalid(`${field} must be a string of 1 to ${max} printable characters, got ${describe(value)}`);
  }
  return value.trim();
}

function tenantName(value: unknown): string {
  return text('name', value, 100);
}

function keyName(value: unknown): string {
  return value === undefined ? '' : text('name', value, 100);
}

function plan(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !Object.hasOwn(PLANS, value)) {
    throw invalid(`plan must be one of ${Object.keys(PLANS).join(', ')}, got ${describe(value)}`);
  }
  return value;
}

function quota(value: unknown): Partial<Quota> | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(`quota must be an object, got ${describe(value)}`);
  const out: Record<string, number> = {};
  for (const [field, n] of Object.entries(value)) {
    const limit = LIMITS[field as keyof typeof LIMITS];
    if (!limit) throw invalid(`unknown quota field ${JSON.stringify(field.slice(0, 64))}; expected ${Object.keys(LIMITS).join(', ')}`);
    if (typeof n !== 'number' || !Number.isFinite(n) || n < limit.min || n > limit.max || (limit.integer && !Number.isInteger(n))) {
      throw invalid(
        `quota.${field} must be ${limit.integer ? 'an integer' : 'a number'} from ${limit.min} to ${limit.max}, got ${describe(n)}`,
      );
    }
    out[field] = n;
  }
  return out as Partial<Quota>;
}

function describe(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return redactKeys(json.length > 64 ? `${json.slice(0, 64)}…` : json);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
