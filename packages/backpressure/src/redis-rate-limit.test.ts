import { type RedisServer, startRedis } from '@ballast/test/redis';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rateLimit } from './hono.ts';
import { RedisRateLimiter } from './redis-rate-limit.ts';

let redis: RedisServer;
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis();
  for (let i = 0; i < 4; i++) clients.push(new Redis(redis.port, redis.host, { lazyConnect: false, maxRetriesPerRequest: 1 }));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
  await redis?.stop();
});

describe.each(['gcra', 'tokenBucket'] as const)('RedisRateLimiter (%s) against a real redis-server', (algorithm) => {
  it('never admits more than the limit with many concurrent callers', async () => {
    // 4 connections, 400 concurrent requests for one key; the quota cannot refill during the test.
    const limiters = clients.map(
      (client) => new RedisRateLimiter({ client, limit: 50, windowMs: 3_600_000, algorithm, name: `c-${algorithm}` }),
    );
    const results = await Promise.all(Array.from({ length: 400 }, (_, i) => limiters[i % limiters.length]!.consume('tenant-1')));
    const admitted = results.filter((r) => r.allowed).length;
    expect(admitted).toBe(50);
    expect(limiters.reduce((sum, l) => sum + l.stats().allowed, 0)).toBe(50);
    const refused = results.find((r) => !r.allowed)!;
    expect(refused.retryAfterMs).toBeGreaterThan(60_000);
    expect(refused.remaining).toBe(0);
    // Another key has its own quota.
    expect((await limiters[0]!.consume('tenant-2')).allowed).toBe(true);
  });

  it('never admits more than burst + rate × elapsed while many callers race a refilling quota', async () => {
    const limiters = clients.map(
      (client) => new RedisRateLimiter({ client, limit: 200, windowMs: 1000, burst: 10, algorithm, name: `race-${algorithm}` }),
    );
    const start = performance.now();
    let admitted = 0;
    // 4 connections × 8 callers each, calling back to back for 300 ms.
    await Promise.all(
      Array.from({ length: 32 }, async (_, i) => {
        while (performance.now() - start < 300) if ((await limiters[i % 4]!.consume('hot')).allowed) admitted++;
      }),
    );
    const elapsed = performance.now() - start;
    expect(admitted).toBeGreaterThan(10);
    expect(admitted).toBeLessThanOrEqual(10 + Math.ceil((elapsed * 200) / 1000));
  });

  it('refills at the configured rate (server time)', async () => {
    const limiter = new RedisRateLimiter({ client: clients[0]!, limit: 20, windowMs: 1000, burst: 2, algorithm, name: `r-${algorithm}` });
    const first = await Promise.all([limiter.consume('k'), limiter.consume('k'), limiter.consume('k')]);
    expect(first.map((d) => d.allowed)).toEqual([true, true, false]);
    const retry = first[2]!.retryAfterMs;
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(50);
    await new Promise((resolve) => setTimeout(resolve, retry + 10));
    expect((await limiter.consume('k')).allowed).toBe(true);
  });

  it('expires its keys', async () => {
    const limiter = new RedisRateLimiter({
      client: clients[0]!,
      limit: 1,
      windowMs: 1000,
      algorithm,
      name: `ttl-${algorithm}`,
      prefix: 'test:',
    });
    await limiter.consume('x');
    const ttl = await clients[0]!.pttl(`test:ttl-${algorithm}:x`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000);
  });

  it('reloads its script after SCRIPT FLUSH', async () => {
    const limiter = new RedisRateLimiter({ client: clients[1]!, limit: 5, windowMs: 1000, algorithm, name: `flush-${algorithm}` });
    await limiter.consume('a');
    await clients[1]!.script('FLUSH');
    expect((await limiter.consume('a')).allowed).toBe(true);
  });
});

describe('RedisRateLimiter (gcra) on the fractional server clock', () => {
  it('admits the first request of every fresh key with a burst of 1 and an interval that is not a whole ms', async () => {
    // Redis TIME reads microseconds, so `now` is fractional; 1000 / 3 and 1000 / 7 ms intervals
    // are not whole: float error in the TAT comparison must not refuse an on-time request.
    for (const limit of [3, 7]) {
      const limiter = new RedisRateLimiter({ client: clients[2]!, limit, windowMs: 1000, burst: 1, name: `frac-${limit}` });
      const decisions = await Promise.all(Array.from({ length: 300 }, (_, i) => limiter.consume(`k${i}`)));
      expect(decisions.filter((d) => !d.allowed)).toEqual([]);
      // Computed by the script at the instant of the decision: no timing in these figures.
      for (const d of decisions)
        expect(d).toEqual({ allowed: true, limit, remaining: 0, resetMs: Math.ceil(1000 / limit), retryAfterMs: 0 });
    }
  });
});

describe('RedisRateLimiter errors', () => {
  it('fails open, closed, or throws as configured when Redis is unreachable', async () => {
    const dead = new Redis(1, '127.0.0.1', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    try {
      const open = new RedisRateLimiter({ client: dead, limit: 1, onError: 'allow' });
      const closed = new RedisRateLimiter({ client: dead, limit: 1, onError: 'deny' });
      const throwing = new RedisRateLimiter({ client: dead, limit: 1 });
      expect((await open.consume('k')).allowed).toBe(true);
      expect((await closed.consume('k')).allowed).toBe(false);
      await expect(throwing.consume('k')).rejects.toThrow();
      expect(open.stats()).toMatchObject({ allowed: 1, limited: 0, errors: 1 });
      expect(throwing.stats()).toMatchObject({ allowed: 0, limited: 0, errors: 1 });
    } finally {
      dead.disconnect();
    }
  });

  it('validates its options', () => {
    expect(() => new RedisRateLimiter({ client: {} as Redis, limit: 1 })).toThrow(/client/);
    expect(() => new RedisRateLimiter({ client: clients[0]!, limit: 1, onError: 'maybe' as 'throw' })).toThrow(/onError/);
  });
});

describe('RedisRateLimiter behind the Hono middleware', () => {
  it('answers 429 with headers once the shared quota is spent, across two app instances', async () => {
    const apps = clients.slice(0, 2).map((client) => {
      const app = new Hono();
      app.use(
        '*',
        rateLimit({
          limiter: new RedisRateLimiter({ client, name: 'shared', limit: 3, windowMs: 60_000 }),
          key: (c) => c.req.header('x-api-key') ?? '-',
        }),
      );
      app.get('/', (c) => c.text('ok'));
      return app;
    });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await apps[i % 2]!.request('/', { headers: { 'x-api-key': 'k' } })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const limited = await apps[0]!.request('/', { headers: { 'x-api-key': 'k' } });
    expect(limited.headers.get('RateLimit-Policy')).toBe('"shared";q=3;w=60');
    expect(limited.headers.get('Retry-After')).toBe('20');
  });
});
