/**
 * The identity data plane in its distributed mode, against real servers: PostgreSQL
 * behind the management plane, Redis carrying the change feed, and several edge caches
 * (one per API server) reading it.
 */

import { type RedisServer, startRedis } from '@ballast/test/redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuthDecision, IdentityClient } from './edge-cache.ts';
import type { ChangeSource } from './feed.ts';
import { generateKey, hashKey } from './key.ts';
import type { KeyEntry, TenantEntry } from './model.ts';
import { RedisFeed } from './redis-feed.ts';
import { type AdminAnswer, type IdentityPlane, startIdentityPlane } from './testing/index.ts';

// Real servers on a machine that may be busy: every wait below ends as soon as what it waits
// for is seen, and its bound is only how long to wait before calling it a failure.
const WAIT_MS = 60_000;

async function eventually<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('RedisFeed', { timeout: 120_000 }, () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it('publishes atomically: snapshot, log, version and notification agree; replays change nothing', async () => {
    const sink = new RedisFeed({ connection: redis.url, prefix: 'feed1:' });
    const source = new RedisFeed({ connection: redis.url, prefix: 'feed1:' });
    await Promise.all([sink.ready(WAIT_MS), source.ready(WAIT_MS)]);
    const batches: unknown[] = [];
    source.subscribe((b) => batches.push(b));
    const observer = new Redis(redis.url);
    await eventually('the subscription to be set up', async () => {
      const [, subscribers] = (await observer.pubsub('NUMSUB', 'feed1:changes')) as [string, number];
      return subscribers === 1;
    });
    observer.disconnect();
    const tenant: TenantEntry = {
      kind: 'tenant',
      id: 'tn_1',
      name: 'one',
      plan: 'free',
      quota: { requestsPerSecond: 5, concurrentJobs: 2, monthlyCpuSeconds: 3600 },
      version: 1,
    };
    const { hash } = generateKey();
    const key: KeyEntry = { kind: 'key', hash, keyId: 'key_1', tenantId: 'tn_1', prefix: 'blst_abcd', status: 'active', version: 2 };
    await sink.publish([tenant, key]);
    await sink.publish([tenant, key]); // a replay
    expect(await sink.publishedVersion()).toBe(2);
    expect(await source.lookup(hash)).toEqual({ version: 2, key, tenant });
    expect(await source.lookup('0'.repeat(64))).toEqual({ version: 2 });
    expect(await source.snapshot()).toEqual({ version: 2, keys: [key], tenants: [tenant] });
    expect(await source.changesSince(1)).toEqual({ version: 2, changes: [key] });
    await eventually('the batch', () => batches.length === 1);
    expect(batches).toEqual([{ prev: 0, version: 2, changes: [tenant, key] }]);

    // An older entry never replaces a newer one (a late duplicate publish).
    await sink.publish([{ ...key, status: 'revoked', version: 3 }]);
    await sink.publish([{ ...key, status: 'active', version: 2 }]);
    expect((await source.lookup(hash)).key?.status).toBe('revoked');
    await Promise.all([sink.close(), source.close()]);
  });

  it('answers resync once its log no longer reaches back to the version asked for', async () => {
    const feed = new RedisFeed({ connection: redis.url, prefix: 'feed2:', maxLog: 3 });
    await feed.ready(WAIT_MS);
    const tenants = Array.from({ length: 6 }, (_, i) => ({
      kind: 'tenant' as const,
      id: `tn_${i}`,
      name: `t${i}`,
      plan: 'free',
      quota: { requestsPerSecond: 1, concurrentJobs: 1, monthlyCpuSeconds: 1 },
      version: i + 1,
    }));
    await feed.publish(tenants);
    expect(await feed.changesSince(1)).toBe('resync');
    expect(await feed.changesSince(3)).toEqual({ version: 6, changes: tenants.slice(3) });
    expect((await feed.snapshot()).tenants).toHaveLength(6);
    await feed.close();
  });
});

describe('identity across processes: PostgreSQL → management plane → Redis → edge caches', { timeout: 180_000 }, () => {
  let plane: IdentityPlane;
  let redis: RedisServer;
  const sources: RedisFeed[] = [];
  const clients: IdentityClient[] = [];

  const admin = (method: string, path: string, body?: unknown): Promise<AdminAnswer> => plane.admin(method, path, body);
  const edge = async (source?: ChangeSource) => {
    const feed = new RedisFeed({ connection: redis.url });
    sources.push(feed);
    const client = new IdentityClient({ source: source ?? feed, pollIntervalMs: 200, freshTtlMs: 1000, missTtlMs: 500 });
    clients.push(client);
    await feed.ready(WAIT_MS);
    expect(await client.start()).toBe(true);
    return client;
  };
  const ok = async (client: IdentityClient, key: string) => (await client.verify(`Bearer ${key}`)) as AuthDecision;

  beforeAll(async () => {
    plane = await startIdentityPlane({ relayIntervalMs: 200, publishTimeoutMs: 5000, feedCommandTimeoutMs: 2000, readyTimeoutMs: WAIT_MS });
    redis = plane.redis;
  }, 180_000);
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(sources.map((s) => s.close()));
    await plane?.close();
  });

  it('a new key works on every edge cache; a revocation is refused on every one', async () => {
    const tenant = (await admin('POST', '/v1/tenants', { name: 'Spread', plan: 'pro' })).body;
    const a = await edge();
    const b = await edge();
    const issued = await admin('POST', `/v1/tenants/${tenant.id}/keys`);
    expect(issued.published).toBe('true');
    const key = issued.body.key as string;
    for (const client of [a, b]) await eventually('the new key', async () => (await ok(client, key)).ok);
    expect(await ok(a, key)).toMatchObject({ ok: true, tenant: { id: tenant.id, plan: 'pro' } });

    await admin('DELETE', `/v1/keys/${issued.body.id}`);
    for (const client of [a, b]) await eventually('the revocation', async () => (await ok(client, key)).ok === false);
    expect(await ok(b, key)).toMatchObject({ status: 403 });
  });

  it('sees a revocation whose publish never arrives (no pub/sub at all) through the poll', async () => {
    const tenant = (await admin('POST', '/v1/tenants', { name: 'Deaf', plan: 'free' })).body;
    const issued = (await admin('POST', `/v1/tenants/${tenant.id}/keys`)).body;
    const feed = new RedisFeed({ connection: redis.url });
    sources.push(feed);
    // The cache must load the key with its snapshot: no lookup, no publish to miss.
    await feed.ready(WAIT_MS);
    await eventually('the key in the feed', async () => (await feed.lookup(hashKey(issued.key as string))).key !== undefined);
    const deaf: ChangeSource = {
      kind: 'redis',
      snapshot: () => feed.snapshot(),
      lookup: (hash) => feed.lookup(hash),
      changesSince: (v) => feed.changesSince(v),
      subscribe: () => () => {}, // every publish is lost
      close: () => feed.close(),
    };
    const client = await edge(deaf);
    expect((await ok(client, issued.key as string)).ok).toBe(true);
    await admin('DELETE', `/v1/keys/${issued.id}`);
    await eventually('the revocation through the poll', async () => (await ok(client, issued.key as string)).ok === false);
    expect(client.stats().lookups).toBe(0);
  });

  it('with Redis down, edge caches keep admitting valid keys and refusing revoked ones; a revocation made meanwhile arrives once Redis is back', async () => {
    const tenant = (await admin('POST', '/v1/tenants', { name: 'Outage', plan: 'pro' })).body;
    const keep = (await admin('POST', `/v1/tenants/${tenant.id}/keys`)).body;
    const drop = (await admin('POST', `/v1/tenants/${tenant.id}/keys`)).body;
    const old = (await admin('POST', `/v1/tenants/${tenant.id}/keys`)).body;
    await admin('DELETE', `/v1/keys/${old.id}`);
    const client = await edge();
    await redis.crash();
    await eventually('a stale snapshot', () => client.health().stale);
    expect(client.health()).toMatchObject({ loaded: true, stale: true });
    expect((await ok(client, keep.key as string)).ok).toBe(true);
    expect(await ok(client, old.key as string)).toMatchObject({ status: 403 });
    expect(await ok(client, generateKey().key)).toMatchObject({ status: 503 });

    const revoked = await admin('DELETE', `/v1/keys/${drop.id}`); // stored; the publish waits for Redis
    expect(revoked.status).toBe(200);
    expect(revoked.published).toBe('pending');
    expect((await ok(client, drop.key as string)).ok).toBe(true); // nothing can tell this server yet

    await redis.restart(); // an empty Redis: no persistence in tests
    await eventually('the relay to republish every change', async () => (await plane.sink.publishedVersion().catch(() => 0)) > 0);
    await eventually('the revocation after the outage', async () => (await ok(client, drop.key as string)).ok === false);
    expect((await ok(client, keep.key as string)).ok).toBe(true);
    await eventually('a fresh snapshot', () => client.health().fresh);
  });

  it('with the management plane and PostgreSQL stopped, edge caches keep authenticating and refusing', async () => {
    const tenant = (await admin('POST', '/v1/tenants', { name: 'Headless', plan: 'pro' })).body;
    const keep = (await admin('POST', `/v1/tenants/${tenant.id}/keys`)).body;
    const gone = (await admin('POST', `/v1/tenants/${tenant.id}/keys`)).body;
    await admin('DELETE', `/v1/keys/${gone.id}`);
    const client = await edge();
    await plane.pg.halt();
    const down = await admin('POST', '/v1/tenants', { name: 'Nope' });
    expect(down.status).toBe(503);
    expect(down.body).toEqual({
      error: { code: 'ERR_BALLAST_IDENTITY_STORE_UNAVAILABLE', message: 'the identity store (PostgreSQL) is unavailable' },
    });
    // Several polls with the store gone: Redis still answers them, so the cache stays confirmed.
    for (let poll = 0; poll < 3; poll++) {
      const since = Date.now();
      await eventually('a poll answered with the store gone', () => {
        const age = client.health().confirmedAgeMs;
        return age !== null && Date.now() - age > since;
      });
      expect((await ok(client, keep.key as string)).ok).toBe(true);
      expect(await ok(client, gone.key as string)).toMatchObject({ status: 403 });
    }
    expect(hashKey(keep.key as string)).toHaveLength(64);
    await plane.pg.restart();
  });
});
