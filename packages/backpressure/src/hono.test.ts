import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { admissionControl, rateLimit, rateLimitHeader, rateLimitPolicyHeader } from './hono.ts';
import { ConcurrencyLimiter } from './limiter.ts';
import { AimdLimit } from './limits/aimd.ts';
import { KeyedRateLimiter } from './rate-limit.ts';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('admissionControl', () => {
  it('admits within the limit and answers 503 with Retry-After beyond it', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, retryAfterMs: 2500 });
    const gate = deferred();
    const app = new Hono();
    app.use('*', admissionControl({ limiter }));
    app.get('/', async (c) => {
      await gate.promise;
      return c.text('ok');
    });
    const first = app.request('/');
    await vi.waitFor(() => expect(limiter.inflight).toBe(1));
    const shed = await app.request('/');
    expect(shed.status).toBe(503);
    expect(shed.headers.get('Retry-After')).toBe('3');
    expect(await shed.json()).toEqual({ error: { code: 'ERR_BALLAST_SHED', message: 'request shed: limit', reason: 'limit' } });
    gate.resolve();
    expect((await first).status).toBe(200);
    expect(limiter.inflight).toBe(0);
  });

  it('feeds 503s and thrown errors to the adaptive limit as drops, other answers as successes', async () => {
    const limiter = new ConcurrencyLimiter({ limit: new AimdLimit({ initialLimit: 10, backoffRatio: 0.5 }) });
    const app = new Hono();
    app.use('*', admissionControl({ limiter }));
    app.onError((_error, c) => c.text('error', 500));
    app.get('/busy', (c) => c.text('busy', 503));
    app.get('/boom', () => {
      throw new Error('boom');
    });
    app.get('/missing', (c) => c.text('no', 404));
    expect((await app.request('/busy')).status).toBe(503);
    expect(limiter.limit).toBe(5);
    expect((await app.request('/boom')).status).toBe(500);
    expect(limiter.limit).toBe(2);
    expect((await app.request('/missing')).status).toBe(404);
    expect(limiter.limit).toBe(3);
    expect(limiter.inflight).toBe(0);
  });

  it('uses the priority and limiter chosen per request, and a custom onRejected', async () => {
    const limiters = { a: new ConcurrencyLimiter({ limit: 1 }), b: new ConcurrencyLimiter({ limit: 1 }) };
    const seen: string[] = [];
    limiters.a.on('admit', (e) => seen.push(e.priority));
    const app = new Hono();
    app.use(
      '/:tenant',
      admissionControl({
        limiter: (c) => limiters[c.req.param('tenant') as 'a' | 'b'],
        priority: (c) => (c.req.header('x-priority') === 'critical' ? 'critical' : 'low'),
        onRejected: (c, error) => c.text(`nope: ${error.reason}`, 503),
      }),
    );
    app.get('/:tenant', (c) => c.text('ok'));
    expect((await app.request('/a', { headers: { 'x-priority': 'critical' } })).status).toBe(200);
    expect((await app.request('/b')).status).toBe(200);
    expect(seen).toEqual(['critical']);
    const held = limiters.a.tryAcquire()!;
    const rejected = await app.request('/a');
    expect(await rejected.text()).toBe('nope: limit');
    held.release();
  });

  it('never runs the handler of a client that went away between getting a slot and starting', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 1 });
    let handled = 0;
    const app = new Hono();
    app.use('*', admissionControl({ limiter }));
    app.get('/', (c) => {
      handled++;
      return c.text('ok');
    });
    const held = limiter.tryAcquire()!;
    const controller = new AbortController();
    const pending = app.request(new Request('http://localhost/', { signal: controller.signal }));
    await vi.waitFor(() => expect(limiter.queued).toBe(1));
    held.release(); // the slot is handed to the queued request...
    controller.abort(); // ...whose client leaves before its middleware resumes
    expect((await pending).status).toBe(499);
    expect(handled).toBe(0);
    expect(limiter.inflight).toBe(0);
    expect(limiter.stats().admitted).toBe(2);
  });

  it('removes a queued request from the queue when the client disconnects (real HTTP server)', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 10, queueTimeoutMs: 30_000 });
    const gate = deferred();
    let handled = 0;
    const app = new Hono();
    app.use('*', admissionControl({ limiter }));
    app.get('/', async (c) => {
      handled++;
      await gate.promise;
      return c.text('ok');
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const { port } = server.address() as AddressInfo;
    try {
      const get = (onRequest?: (req: ReturnType<typeof httpRequest>) => void) =>
        new Promise<number>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, path: '/' }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
          onRequest?.(req);
        });
      const first = get();
      await vi.waitFor(() => expect(limiter.inflight).toBe(1));
      let client!: ReturnType<typeof httpRequest>;
      const abandoned = get((req) => (client = req)).catch((e: Error) => e.message);
      await vi.waitFor(() => expect(limiter.queued).toBe(1));
      client.destroy();
      await abandoned;
      await vi.waitFor(() => expect(limiter.queued).toBe(0));
      gate.resolve();
      expect(await first).toBe(200);
      expect(handled).toBe(1);
      expect(limiter.stats().admitted).toBe(1);
    } finally {
      await new Promise((resolve) => server.close(resolve));
      limiter.close();
    }
  });
});

describe('rateLimit', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers 429 with Retry-After and the IETF RateLimit headers, per key', async () => {
    const limiter = new KeyedRateLimiter({ name: 'per-key', limit: 2, windowMs: 60_000 });
    const app = new Hono();
    app.use('*', rateLimit({ limiter, key: (c) => c.req.header('x-api-key') ?? 'anonymous' }));
    app.get('/', (c) => c.text('ok'));
    const call = (key: string) => app.request('/', { headers: { 'x-api-key': key } });
    const first = await call('k1');
    expect(first.status).toBe(200);
    expect(first.headers.get('RateLimit-Policy')).toBe('"per-key";q=2;w=60');
    expect(first.headers.get('RateLimit')).toBe('"per-key";r=1;t=30');
    expect((await call('k1')).headers.get('RateLimit')).toBe('"per-key";r=0;t=60');
    const limited = await call('k1');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('Retry-After')).toBe('30');
    expect(limited.headers.get('RateLimit')).toBe('"per-key";r=0;t=60');
    expect(await limited.json()).toEqual({
      error: { code: 'ERR_BALLAST_SHED', message: 'request shed: rateLimited', reason: 'rateLimited' },
    });
    expect((await call('k2')).status).toBe(200);
    vi.advanceTimersByTime(30_000);
    expect((await call('k1')).status).toBe(200);
  });

  it('adds the RateLimit headers to a Response the handler built itself, and to error answers', async () => {
    const limiter = new KeyedRateLimiter({ name: 'raw', limit: 5, windowMs: 1000 });
    const app = new Hono();
    app.use('*', rateLimit({ limiter }));
    app.onError((_error, c) => c.text('error', 500));
    app.get('/raw', () => new Response('raw', { headers: { 'content-type': 'text/plain' } }));
    app.get('/boom', () => {
      throw new Error('boom');
    });
    const raw = await app.request('/raw');
    expect(await raw.text()).toBe('raw');
    expect(raw.headers.get('RateLimit-Policy')).toBe('"raw";q=5;w=1');
    expect(raw.headers.get('RateLimit')).toBe('"raw";r=4;t=1');
    const boom = await app.request('/boom');
    expect(boom.status).toBe(500);
    expect(boom.headers.get('RateLimit')).toBe('"raw";r=3;t=1');
  });

  it('lists every policy when rate limits are layered, on allowed and limited answers', async () => {
    const perKey = new KeyedRateLimiter({ name: 'per-key', limit: 1, windowMs: 1000 });
    const global = new KeyedRateLimiter({ name: 'global', limit: 100, windowMs: 1000 });
    const app = new Hono();
    app.use('*', rateLimit({ limiter: global }));
    app.use('*', rateLimit({ limiter: perKey, key: (c) => c.req.header('x-api-key') ?? '-' }));
    app.get('/', (c) => c.text('ok'));
    const ok = await app.request('/', { headers: { 'x-api-key': 'k' } });
    expect(ok.headers.get('RateLimit-Policy')).toBe('"per-key";q=1;w=1, "global";q=100;w=1');
    expect(ok.headers.get('RateLimit')).toBe('"per-key";r=0;t=1, "global";r=99;t=1');
    const limited = await app.request('/', { headers: { 'x-api-key': 'k' } });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('RateLimit')).toBe('"per-key";r=0;t=1, "global";r=98;t=1');
  });

  it('charges a cost, can omit headers on success, and accepts onRejected', async () => {
    const limiter = new KeyedRateLimiter({ limit: 10, windowMs: 1000 });
    const app = new Hono();
    app.use('*', rateLimit({ limiter, cost: () => 6, headers: false, onRejected: (c, d) => c.text(`wait ${d.retryAfterMs}`, 429) }));
    app.get('/', (c) => c.text('ok'));
    const ok = await app.request('/');
    expect(ok.headers.get('RateLimit')).toBeNull();
    const limited = await app.request('/');
    expect(await limited.text()).toBe('wait 200');
  });

  it('formats header values as structured fields', () => {
    const policy = { name: 'a"b', limit: 99.5, windowMs: 1500 };
    expect(rateLimitPolicyHeader(policy)).toBe('"a\\"b";q=99;w=2');
    expect(rateLimitHeader(policy, { allowed: true, limit: 99.5, remaining: 3.7, resetMs: 1001, retryAfterMs: 0 })).toBe('"a\\"b";r=3;t=2');
  });
});
