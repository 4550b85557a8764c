import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { generateKey, IdentityClient, InProcessFeed, type KeyEntry, type Quota, type TenantEntry } from '@ballast/app-identity';
import { InProcessQueue } from '@ballast/app-queue';
import { listen, memoryLogger } from '@ballast/app-shared';
import { ResizeWorker } from '@ballast/app-worker';
import { type RedisServer, startRedis } from '@ballast/test/redis';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApi, identityAuthentication } from './index.ts';
import { ownsJob } from './tenancy.ts';
import { TenantQuotas } from './tenant-quota.ts';

let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 64, height: 32, channels: 3, background: '#336699' } })
    .jpeg()
    .toBuffer();
});

let version = 0;
const quota = (q: Partial<Quota> = {}): Quota => ({ requestsPerSecond: 1000, concurrentJobs: 100, monthlyCpuSeconds: 1, ...q });
const tenant = (id: string, q?: Partial<Quota>): TenantEntry => ({
  kind: 'tenant',
  id,
  name: id,
  plan: 'pro',
  quota: quota(q),
  version: ++version,
});
const keyFor = (tenantId: string, status: 'active' | 'revoked' = 'active') => {
  const generated = generateKey();
  const entry: KeyEntry = {
    kind: 'key',
    hash: generated.hash,
    keyId: `key_${generated.prefix}`,
    tenantId,
    prefix: generated.prefix,
    status,
    version: ++version,
  };
  return { key: generated.key, entry };
};

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

async function setup(
  options: { worker?: boolean; anonymous?: Quota | false; quotas?: TenantQuotas; tenants?: Record<string, Partial<Quota>> } = {},
) {
  const feed = new InProcessFeed();
  const identity = new IdentityClient({ source: feed });
  const keys = {} as Record<string, string> & { tn_a: string; tn_b: string };
  const changes: Array<TenantEntry | KeyEntry> = [];
  for (const [id, q] of Object.entries(options.tenants ?? { tn_a: {}, tn_b: {} })) {
    changes.push(tenant(id, q));
    const k = keyFor(id);
    keys[id] = k.key;
    changes.push(k.entry);
  }
  const revoked = keyFor('tn_a', 'revoked');
  changes.push(revoked.entry);
  await feed.publish(changes);
  await identity.start();
  const queue = new InProcessQueue({ maxDepth: 1000 });
  // Slots enough that jobs left queued (tests without workers) never wait in their tenant's lane.
  const quotas = options.quotas ?? new TenantQuotas({ workerSlots: 100 });
  const { logger, entries: logs } = memoryLogger('info');
  const authenticate = identityAuthentication({ identity, quotas, anonymous: options.anonymous ?? false });
  const api = createApi({ queue, identity, quotas, authenticate, logger });
  open.push(queue, identity, quotas, api);
  if (options.worker !== false) open.push(new ResizeWorker({ queue, concurrency: 1 }).start());
  const call = (path: string, key: string | undefined, init: RequestInit = {}) =>
    api.app.request(path, {
      ...init,
      headers: { ...(key !== undefined && { authorization: `Bearer ${key}` }), ...(init.headers as Record<string, string>) },
    });
  const post = (key: string | undefined, query = 'width=16', headers: Record<string, string> = {}) =>
    call(`/v1/resize?${query}`, key, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg', ...headers } });
  return { feed, identity, queue, api, keys, revoked: revoked.key, post, call, logs, quotas };
}

describe('authentication', () => {
  it('admits a valid key as its tenant, who owns the job it creates', async () => {
    const { post, keys } = await setup();
    const res = await post(keys.tn_a, 'width=16&mode=async');
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(ownsJob('tn_a', id)).toBe(true);
    expect(ownsJob('tn_b', id)).toBe(false);
    expect(ownsJob('tn', id)).toBe(false); // a tenant whose id is a prefix of another's
    expect(ownsJob('tn_a', `${id}0`)).toBe(false);
  });

  it('answers 401 with WWW-Authenticate and the error body when the key is missing, and enqueues nothing', async () => {
    const { post, queue } = await setup({ worker: false });
    const res = await post(undefined);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="ballast"');
    expect(await res.json()).toEqual({
      error: { code: 'ERR_BALLAST_AUTH_MISSING', message: 'authentication required: send the header Authorization: Bearer <API key>' },
    });
    expect(await queue.depth()).toBe(0);
  });

  it.each([
    ['empty', ''],
    ['wrong prefix', `ghp_${'a'.repeat(36)}`],
    ['bad checksum', `blst_${'b'.repeat(36)}`],
    ['wrong length', `${generateKey().key}0`],
    ['non-ASCII', `blst_${'ä'.repeat(36)}`],
    ['huge', 'blst_'.repeat(4000)],
  ])('refuses a %s key with 401 and no lookup', async (_what, key) => {
    const { post, identity, queue } = await setup({ worker: false });
    const res = await post(undefined, 'width=16', { authorization: `Bearer ${key}` });
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('ERR_BALLAST_AUTH_MALFORMED');
    if (key.length > 10) expect(body.error.message).not.toContain(key.slice(5, 25));
    expect(identity.stats().lookups).toBe(0);
    expect(await queue.depth()).toBe(0);
  });

  it('answers 401 for an unknown key (one lookup), 403 for a revoked one', async () => {
    const { post, identity, revoked } = await setup({ worker: false });
    expect((await (await post(generateKey().key)).json()) as object).toMatchObject({ error: { code: 'ERR_BALLAST_AUTH_UNKNOWN_KEY' } });
    expect(identity.stats().lookups).toBe(1);
    const res = await post(revoked);
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: { code: 'ERR_BALLAST_AUTH_REVOKED', message: 'the API key has been revoked' } });
  });

  it('refuses two values in one Authorization header and two Authorization headers, even when the first is valid', async () => {
    const { post, keys, api } = await setup({ worker: false });
    const joined = await post(undefined, 'width=16', { authorization: `Bearer ${keys.tn_a}, Bearer ${keys.tn_b}` });
    expect(joined.status).toBe(401);
    const server = await listen(api.app.fetch);
    open.push(server);
    const status = await new Promise<number>((resolve, reject) => {
      // Two header lines, as a raw list: Node would otherwise join or refuse them client-side.
      const req = httpRequest(`${server.url}/v1/jobs/tn_a-00000000-0000-0000-0000-000000000000`, {
        headers: ['host', new URL(server.url).host, 'authorization', `Bearer ${keys.tn_a}`, 'authorization', `Bearer ${keys.tn_b}`],
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(401);
  });

  it('lets anonymous requests in under their own quota only when configured', async () => {
    const { post } = await setup({ anonymous: quota({ requestsPerSecond: 1 }) });
    const res = await post(undefined, 'width=16&mode=async');
    expect(res.status).toBe(202);
    expect(((await res.json()) as { id: string }).id.startsWith('anonymous-')).toBe(true);
    expect((await post(undefined)).status).toBe(429);
  });

  it('never writes a key into a log entry', async () => {
    const { post, keys, logs, revoked } = await setup();
    await post(keys.tn_a);
    await post(revoked);
    await post(`${keys.tn_b.slice(0, -1)}x`);
    const text = JSON.stringify(logs);
    for (const key of [keys.tn_a, keys.tn_b, revoked]) expect(text).not.toContain(key.slice(9));
    expect(logs.length).toBeGreaterThan(0);
  });

  it('reports a stale identity snapshot in /readyz without failing it', async () => {
    const { api } = await setup({ worker: false });
    const ready = await api.app.request('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, identity: { loaded: true, source: 'in-process' } });
  });
});

describe('tenant isolation', () => {
  it("answers 404 to another tenant's GET and DELETE of a job, and leaves the job alone", async () => {
    const { post, call, keys } = await setup({ worker: false });
    const created = (await (await post(keys.tn_a, 'width=16&mode=async')).json()) as { id: string };
    for (const [method, key] of [
      ['GET', keys.tn_b],
      ['DELETE', keys.tn_b],
    ] as Array<['GET' | 'DELETE', string]>) {
      const res = await call(`/v1/jobs/${created.id}`, key, { method });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({
        error: { code: 'ERR_BALLAST_UNKNOWN_JOB', message: 'no such job (never existed, or its result has expired)' },
      });
    }
    expect((await call(`/v1/jobs/${created.id}`, keys.tn_a)).status).toBe(202); // still pending: not cancelled
    // An id with the other tenant's prefix swapped in is simply another (unknown) job.
    expect((await call(`/v1/jobs/${created.id.replace('tn_a', 'tn_b')}`, keys.tn_b)).status).toBe(404);
    expect((await call(`/v1/jobs/${created.id}`, undefined)).status).toBe(401);
    const cancelled = await call(`/v1/jobs/${created.id}`, keys.tn_a, { method: 'DELETE' });
    expect(await cancelled.json()).toEqual({ id: created.id, cancelled: true });
  });
});

describe('per-tenant quotas', () => {
  it('answers 429 with Retry-After and RateLimit headers beyond the rate, and RateLimit headers on every answer', async () => {
    let now = 1_000_000;
    const quotas = new TenantQuotas({ clock: { now: () => now }, workerSlots: 100 }); // no workers: async jobs stay queued
    const { post, keys } = await setup({ worker: false, quotas, tenants: { tn_a: { requestsPerSecond: 2 }, tn_b: {} } });
    const first = await post(keys.tn_a, 'width=16&mode=async');
    expect(first.status).toBe(202);
    expect(first.headers.get('ratelimit-policy')).toBe('"tenant";q=2;w=1');
    expect(first.headers.get('ratelimit')).toMatch(/^"tenant";r=1;t=\d+$/);
    expect((await post(keys.tn_a, 'width=16&mode=async')).status).toBe(202);
    const limited = await post(keys.tn_a, 'width=16&mode=async');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.headers.get('ratelimit')).toMatch(/^"tenant";r=0;t=1$/);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('ERR_BALLAST_RATE_LIMITED');
    expect((await post(keys.tn_b, 'width=16&mode=async')).status).toBe(202); // another tenant is not affected
    now += 500;
    expect((await post(keys.tn_a, 'width=16&mode=async')).status).toBe(202); // one request's worth refilled
  });

  it('refuses jobs beyond the concurrent-job quota with 429 until one finishes', async () => {
    const { post, call, keys } = await setup({ worker: false, tenants: { tn_a: { concurrentJobs: 2 }, tn_b: { concurrentJobs: 2 } } });
    const a1 = (await (await post(keys.tn_a, 'width=16&mode=async')).json()) as { id: string };
    expect((await post(keys.tn_a, 'width=16&mode=async')).status).toBe(202);
    const over = await post(keys.tn_a, 'width=16&mode=async');
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('1');
    expect(((await over.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'ERR_BALLAST_TOO_MANY_JOBS',
      message: expect.stringContaining('already has 2 jobs'),
    });
    expect((await post(keys.tn_b, 'width=16&mode=async')).status).toBe(202);
    await call(`/v1/jobs/${a1.id}`, keys.tn_a, { method: 'DELETE' }); // a final state: the slot frees
    let status = 429;
    for (let i = 0; i < 100 && status === 429; i++) {
      status = (await post(keys.tn_a, 'width=16&mode=async')).status;
      if (status === 429) await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).toBe(202);
  });

  it('a tenant sending 10× its quota is cut at its own limit while another tenant is served in full', async () => {
    const { post, keys } = await setup({
      tenants: { tn_noisy: { requestsPerSecond: 5, concurrentJobs: 4 }, tn_quiet: { requestsPerSecond: 5, concurrentJobs: 4 } },
    });
    const statuses = (key: string | undefined, n: number) => Promise.all(Array.from({ length: n }, async () => (await post(key)).status));
    const noisy = statuses(keys.tn_noisy, 50);
    const quiet = statuses(keys.tn_quiet, 4);
    const [n, q] = await Promise.all([noisy, quiet]);
    expect(q).toEqual([200, 200, 200, 200]);
    expect(n.filter((s) => s === 200).length).toBeLessThanOrEqual(5);
    expect(n.filter((s) => s === 429).length).toBeGreaterThanOrEqual(45);
  });
});

describe('refusing a tenant over its rate, over HTTP', () => {
  /** Sends the head of a POST (and `body`, if any) on one socket; resolves with the first answer and how the socket ended. */
  function rawPost(url: string, key: string, contentLength: number) {
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(
      `POST /v1/resize?width=16 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\ncontent-type: image/jpeg\r\ncontent-length: ${contentLength}\r\n\r\n`,
    );
    const answered = vi.waitFor(
      () => {
        if (!/\r\n\r\n/.test(text)) throw new Error('no answer yet');
        return text;
      },
      { timeout: 10_000, interval: 5 },
    );
    return { socket, answered, closed };
  }

  it('answers 429 before reading a byte of a large body, and closes the connection instead of reading it', async () => {
    const { api, keys, queue, post } = await setup({ worker: false, tenants: { tn_a: { requestsPerSecond: 1 }, tn_b: {} } });
    const server = await listen(api.app.fetch);
    open.push({ close: () => server.close(0) });
    expect((await post(keys.tn_a, 'width=16&mode=async')).status).toBe(202); // the one request of its rate
    const huge = rawPost(server.url, keys.tn_a, 50 * 1024 * 1024); // declares 50 MiB, sends none of it
    const head = await huge.answered;
    expect(head).toMatch(/^HTTP\/1\.1 429 /);
    expect(head.toLowerCase()).toContain('connection: close');
    expect(head.toLowerCase()).toContain('retry-after: 1');
    expect(head).toContain('ERR_BALLAST_RATE_LIMITED');
    await huge.closed; // the server closed the connection: the 50 MiB are never read
    expect(await queue.depth()).toBeLessThanOrEqual(1);
  });

  it('drains a small body after a 429 and keeps the connection for the next request', async () => {
    const { api, keys } = await setup({ worker: false, tenants: { tn_a: { requestsPerSecond: 1 }, tn_b: {} } });
    const server = await listen(api.app.fetch);
    open.push({ close: () => server.close(0) });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = () =>
      new Promise<{ status: number; socket: unknown }>((resolve, reject) => {
        const req = httpRequest(`${server.url}/v1/resize?width=16&mode=async`, {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${keys.tn_a}`, 'content-type': 'image/jpeg' },
        });
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, socket: req.socket }));
        });
        req.on('error', reject);
        req.end(jpeg);
      });
    const first = await send();
    const second = await send();
    const third = await send();
    expect([first.status, second.status, third.status]).toEqual([202, 429, 429]);
    expect(third.socket).toBe(first.socket); // one connection throughout
    agent.destroy();
  });
});

describe('per-tenant quotas shared through Redis (several API servers)', () => {
  let redis: RedisServer;
  let clients: Redis[];
  beforeAll(async () => {
    redis = await startRedis();
    clients = [new Redis(redis.url), new Redis(redis.url)];
    for (const c of clients) c.on('error', () => {}); // the test crashes Redis on purpose
  });
  afterAll(async () => {
    for (const c of clients ?? []) c.disconnect();
    await redis?.stop();
  });

  it('counts one tenant’s rate and jobs across servers, and admits when Redis is gone', async () => {
    // A burst of 3 refilled once every 20 s, and Redis given 2 s to answer: the four calls
    // below are decided by the shared bucket however slowly a loaded machine makes them.
    const [one, two] = clients.map(
      (client) => new TenantQuotas({ redis: client, prefix: 'q1:', burstSeconds: 60, redisTimeoutMs: 2000 }),
    ) as [TenantQuotas, TenantQuotas];
    const q = quota({ requestsPerSecond: 0.05, concurrentJobs: 2 });
    const decisions = [await one.rate('tn_x', q), await two.rate('tn_x', q), await one.rate('tn_x', q), await two.rate('tn_x', q)];
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    const s1 = await one.acquireJob('tn_x', q, 10_000);
    const s2 = await two.acquireJob('tn_x', q, 10_000);
    expect(s1 && s2).toBeTruthy();
    expect(await one.acquireJob('tn_x', q, 10_000)).toBeUndefined();
    expect(await two.acquireJob('tn_y', q, 10_000)).toBeTruthy(); // another tenant
    s1?.release();
    await new Promise((r) => setTimeout(r, 50));
    expect(await two.acquireJob('tn_x', q, 10_000)).toBeTruthy();
    // A slot whose holder died is freed when its lease (Redis's clock) ends.
    expect(await one.acquireJob('tn_z', quota({ concurrentJobs: 1 }), 2000)).toBeTruthy();
    expect(await one.acquireJob('tn_z', quota({ concurrentJobs: 1 }), 2000)).toBeUndefined();
    await expect
      .poll(async () => (await one.acquireJob('tn_z', quota({ concurrentJobs: 1 }), 60_000)) !== undefined, { timeout: 30_000 })
      .toBe(true);

    await redis.crash();
    expect((await one.rate('tn_x', q)).allowed).toBe(true);
    expect(await one.acquireJob('tn_x', q, 10_000)).toBeTruthy();
    expect(one.stats().redisErrors).toBeGreaterThanOrEqual(2);
    await redis.restart();
  });
});
