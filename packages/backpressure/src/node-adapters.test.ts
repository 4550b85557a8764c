/**
 * The Express and Fastify adapters against real Express 5 and Fastify 5 servers on
 * loopback: the same cases for both, through real HTTP requests.
 */
import { eventually, gate, type Listening, listen, open, send } from '@ballast/test/http';
import { type RedisServer, startRedis } from '@ballast/test/redis';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as onExpress from './express.ts';
import * as onFastify from './fastify.ts';
import { ConcurrencyLimiter } from './limiter.ts';
import { AimdLimit } from './limits/aimd.ts';
import { KeyedRateLimiter } from './rate-limit.ts';
import { RedisRateLimiter } from './redis-rate-limit.ts';

/** What a test asks of either framework. */
interface Setup {
  admission?: onExpress.AdmissionControlOptions & onFastify.AdmissionControlOptions;
  rateLimits?: Array<onExpress.RateLimitMiddlewareOptions & onFastify.RateLimitMiddlewareOptions>;
}

/** Routes both servers have: `/ok`, `/wait` (until `release`), `/boom` (throws), `/status/:code`. */
interface Server extends Listening {
  handled: number;
  release(): void;
}

type Framework = 'express' | 'fastify';

let current: Server | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function start(framework: Framework, setup: Setup): Promise<Server> {
  let hold = gate();
  const state = { handled: 0 };
  const wait = async (): Promise<string> => {
    state.handled++;
    await hold.promise;
    return 'waited';
  };
  const release = (): void => {
    hold.open();
    hold = gate();
  };
  let listening: Listening;
  if (framework === 'express') {
    const app = express();
    for (const options of setup.rateLimits ?? []) app.use(onExpress.rateLimit(options));
    if (setup.admission) app.use(onExpress.admissionControl(setup.admission));
    app.get('/ok', (_req, res) => void res.send('ok'));
    app.get('/wait', async (_req, res) => void res.send(await wait()));
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    app.get('/status/:code', (req, res) => void res.status(Number(req.params.code)).send('status'));
    listening = await listen(app);
  } else {
    const app: FastifyInstance = Fastify();
    for (const options of setup.rateLimits ?? []) await app.register(onFastify.rateLimit(options));
    if (setup.admission) await app.register(onFastify.admissionControl(setup.admission));
    app.get('/ok', async () => 'ok');
    app.get('/wait', wait);
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    app.get<{ Params: { code: string } }>('/status/:code', async (request, reply) =>
      reply.code(Number(request.params.code)).send('status'),
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    listening = { url: `http://127.0.0.1:${port}`, port, server: app.server, close: () => app.close() };
  }
  const server: Server = {
    url: listening.url,
    port: listening.port,
    server: listening.server,
    release,
    get handled() {
      return state.handled;
    },
    close: () => {
      // Handlers still waiting finish first: a server never closes with requests held.
      release();
      return listening.close();
    },
  };
  current = server;
  return server;
}

describe.each(['express', 'fastify'] as const)('%s admissionControl (real server)', (framework) => {
  it('admits within the limit, answers 503 with Retry-After beyond it, and releases the slot when the response is sent', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, retryAfterMs: 2500 });
    const server = await start(framework, { admission: { limiter } });
    const first = send(`${server.url}/wait`);
    await eventually(() => expect(server.handled).toBe(1));
    expect(limiter.inflight).toBe(1);
    const shed = await send(`${server.url}/ok`);
    expect(shed.status).toBe(503);
    expect(shed.headers['retry-after']).toBe('3');
    expect(shed.headers['content-type']).toMatch(/^application\/json/);
    expect(shed.json()).toEqual({ error: { code: 'ERR_BALLAST_SHED', message: 'request shed: limit', reason: 'limit' } });
    server.release();
    expect((await first).status).toBe(200);
    await eventually(() => expect(limiter.inflight).toBe(0));
    expect((await send(`${server.url}/ok`)).status).toBe(200);
    await eventually(() => expect(limiter.inflight).toBe(0));
  });

  it('serves concurrent requests within the limit and queues the rest in order', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 3, maxQueue: 10, queueTimeoutMs: 30_000 });
    let peak = 0;
    limiter.on('admit', (e) => {
      peak = Math.max(peak, e.inflight);
    });
    const server = await start(framework, { admission: { limiter } });
    const all = Array.from({ length: 8 }, () => send(`${server.url}/wait`));
    await eventually(() => expect(limiter.queued).toBe(5));
    expect(server.handled).toBe(3);
    for (let released = 0; released < 8 && server.handled < 8; released++) {
      const before = server.handled;
      server.release();
      await eventually(() => expect(server.handled).toBeGreaterThan(before));
    }
    server.release();
    const statuses = (await Promise.all(all)).map((r) => r.status);
    expect(statuses).toEqual(Array(8).fill(200));
    expect(peak).toBe(3);
    await eventually(() => expect(limiter.inflight).toBe(0));
    expect(limiter.stats().admitted).toBe(8);
  });

  it('frees the slot of a client that goes away mid-request, teaching the limit nothing', async () => {
    const limiter = new ConcurrencyLimiter({ limit: new AimdLimit({ initialLimit: 4, backoffRatio: 0.5 }) });
    const server = await start(framework, { admission: { limiter } });
    const client = open(`${server.url}/wait`);
    await eventually(() => expect(server.handled).toBe(1));
    expect(limiter.inflight).toBe(1);
    client.abandon();
    await eventually(() => expect(limiter.inflight).toBe(0));
    expect(limiter.limit).toBe(4);
    server.release();
  });

  it('removes a queued request whose client disconnects; its handler never runs', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1, maxQueue: 10, queueTimeoutMs: 30_000 });
    const server = await start(framework, { admission: { limiter } });
    const first = send(`${server.url}/wait`);
    await eventually(() => expect(limiter.inflight).toBe(1));
    const abandoned = open(`${server.url}/wait`);
    await eventually(() => expect(limiter.queued).toBe(1));
    abandoned.abandon();
    await eventually(() => expect(limiter.queued).toBe(0));
    server.release();
    expect((await first).status).toBe(200);
    await eventually(() => expect(limiter.inflight).toBe(0));
    expect(server.handled).toBe(1);
    expect(limiter.stats().admitted).toBe(1);
  });

  it('feeds 503s to the adaptive limit as drops, other answers (a thrown error answered 500, a 404) as successes', async () => {
    // AIMD grows by one per success while at least half the limit is in use: from 1, one request is enough.
    const limiter = new ConcurrencyLimiter({ limit: new AimdLimit({ initialLimit: 2, backoffRatio: 0.5 }) });
    const server = await start(framework, { admission: { limiter } });
    expect((await send(`${server.url}/status/503`)).status).toBe(503);
    await eventually(() => expect(limiter.inflight).toBe(0));
    expect(limiter.limit).toBe(1);
    expect((await send(`${server.url}/boom`)).status).toBe(500);
    await eventually(() => expect(limiter.inflight).toBe(0));
    expect(limiter.limit).toBe(2);
    expect((await send(`${server.url}/status/404`)).status).toBe(404);
    await eventually(() => expect(limiter.inflight).toBe(0));
    expect(limiter.limit).toBe(3);
  });

  it('uses the limiter and priority chosen per request, and a custom onRejected', async () => {
    const limiters = { a: new ConcurrencyLimiter({ limit: 1 }), b: new ConcurrencyLimiter({ limit: 1 }) };
    const seen: string[] = [];
    limiters.a.on('admit', (e) => seen.push(e.priority));
    type Headed = { headers: Record<string, string | string[] | undefined> };
    const header = (request: Headed, name: string) => String(request.headers[name] ?? '');
    const server = await start(framework, {
      admission: {
        limiter: (request: Headed) => limiters[header(request, 'x-tenant') === 'a' ? 'a' : 'b'],
        priority: (request) => (header(request, 'x-priority') === 'critical' ? 'critical' : 'low'),
        onRejected: async (_request, reply, error) => {
          const res = 'raw' in reply ? reply.raw : reply;
          res.statusCode = 503;
          res.end(`nope: ${error.reason}`);
        },
      },
    });
    expect((await send(`${server.url}/ok`, { headers: { 'x-tenant': 'a', 'x-priority': 'critical' } })).status).toBe(200);
    expect((await send(`${server.url}/ok`, { headers: { 'x-tenant': 'b' } })).status).toBe(200);
    expect(seen).toEqual(['critical']);
    await eventually(() => expect(limiters.a.inflight).toBe(0));
    const held = limiters.a.tryAcquire()!;
    const rejected = await send(`${server.url}/ok`, { headers: { 'x-tenant': 'a' } });
    expect(rejected.body).toBe('nope: limit');
    held.release();
  });

  it('refuses invalid options at construction, naming the option', () => {
    const adapter = framework === 'express' ? onExpress : onFastify;
    expect(() => adapter.admissionControl({} as never)).toThrow(/limiter must be a ConcurrencyLimiter/);
    expect(() => adapter.admissionControl({ limiter: new ConcurrencyLimiter(), priority: 'high' as never })).toThrow(
      /priority must be a function/,
    );
  });
});

describe.each(['express', 'fastify'] as const)('%s rateLimit (real server)', (framework) => {
  let now = 0;
  const clock = { now: () => now };

  it('answers 429 with Retry-After and the IETF RateLimit headers, per key', async () => {
    now = 0;
    const limiter = new KeyedRateLimiter({ name: 'per-key', limit: 2, windowMs: 60_000, clock });
    const server = await start(framework, {
      rateLimits: [{ limiter, key: (request) => String(request.headers['x-api-key'] ?? 'anonymous') }],
    });
    const call = (key: string) => send(`${server.url}/ok`, { headers: { 'x-api-key': key } });
    const first = await call('k1');
    expect(first.status).toBe(200);
    expect(first.body).toBe('ok');
    expect(first.headers['ratelimit-policy']).toBe('"per-key";q=2;w=60');
    expect(first.headers.ratelimit).toBe('"per-key";r=1;t=30');
    expect((await call('k1')).headers.ratelimit).toBe('"per-key";r=0;t=60');
    const limited = await call('k1');
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('30');
    expect(limited.headers.ratelimit).toBe('"per-key";r=0;t=60');
    expect(limited.headers['ratelimit-policy']).toBe('"per-key";q=2;w=60');
    expect(limited.json()).toEqual({ error: { code: 'ERR_BALLAST_SHED', message: 'request shed: rateLimited', reason: 'rateLimited' } });
    expect((await call('k2')).status).toBe(200);
    now = 30_000;
    expect((await call('k1')).status).toBe(200);
  });

  it('adds the RateLimit headers to error answers (a thrown error, a 404)', async () => {
    now = 0;
    const limiter = new KeyedRateLimiter({ name: 'raw', limit: 5, windowMs: 1000, clock });
    const server = await start(framework, { rateLimits: [{ limiter }] });
    const boom = await send(`${server.url}/boom`);
    expect(boom.status).toBe(500);
    expect(boom.headers.ratelimit).toBe('"raw";r=4;t=1');
    const missing = await send(`${server.url}/nowhere`);
    expect(missing.status).toBe(404);
    expect(missing.headers['ratelimit-policy']).toBe('"raw";q=5;w=1');
  });

  it('lists every policy when rate limits are layered, on allowed and limited answers', async () => {
    now = 0;
    const global = new KeyedRateLimiter({ name: 'global', limit: 100, windowMs: 1000, clock });
    const perKey = new KeyedRateLimiter({ name: 'per-key', limit: 1, windowMs: 1000, clock });
    const server = await start(framework, {
      rateLimits: [{ limiter: global }, { limiter: perKey, key: (request) => String(request.headers['x-api-key'] ?? '-') }],
    });
    const ok = await send(`${server.url}/ok`, { headers: { 'x-api-key': 'k' } });
    expect(ok.headers['ratelimit-policy']).toBe('"global";q=100;w=1, "per-key";q=1;w=1');
    expect(ok.headers.ratelimit).toBe('"global";r=99;t=1, "per-key";r=0;t=1');
    const limited = await send(`${server.url}/ok`, { headers: { 'x-api-key': 'k' } });
    expect(limited.status).toBe(429);
    expect(limited.headers.ratelimit).toBe('"global";r=98;t=1, "per-key";r=0;t=1');
  });

  it('charges a cost, can omit headers on success, and accepts onRejected', async () => {
    now = 0;
    const limiter = new KeyedRateLimiter({ limit: 10, windowMs: 1000, clock });
    const server = await start(framework, {
      rateLimits: [
        {
          limiter,
          cost: () => 6,
          headers: false,
          onRejected: async (_request, reply, decision) => {
            const res = 'raw' in reply ? reply.raw : reply;
            res.statusCode = 429;
            res.end(`wait ${decision.retryAfterMs}`);
          },
        },
      ],
    });
    const ok = await send(`${server.url}/ok`);
    expect(ok.status).toBe(200);
    expect(ok.headers.ratelimit).toBeUndefined();
    const limited = await send(`${server.url}/ok`);
    expect(limited.status).toBe(429);
    expect(limited.body).toBe('wait 200');
  });

  it('answers a failing key function with a 500 and runs no handler', async () => {
    const limiter = new KeyedRateLimiter({ limit: 10, windowMs: 1000, clock });
    const server = await start(framework, {
      rateLimits: [
        {
          limiter,
          key: async () => {
            throw new Error('no key');
          },
        },
      ],
    });
    expect((await send(`${server.url}/wait`)).status).toBe(500);
    expect(server.handled).toBe(0);
  });

  it('refuses invalid options at construction, naming the option', () => {
    const adapter = framework === 'express' ? onExpress : onFastify;
    expect(() => adapter.rateLimit({ limiter: {} } as never)).toThrow(/limiter must be a RateLimiter/);
    expect(() => adapter.rateLimit({ limiter: new KeyedRateLimiter({ limit: 1 }), headers: 'yes' as never })).toThrow(
      /headers must be a boolean/,
    );
  });
});

describe('rateLimit over a real redis-server, on Express and Fastify', () => {
  let redis: RedisServer;
  let client: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.port, redis.host, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  it.each(['express', 'fastify'] as const)(
    '%s: one quota shared through Redis, with RateLimit headers and Retry-After',
    async (framework) => {
      const limiter = new RedisRateLimiter({ client, name: `tenant-${framework}`, limit: 2, windowMs: 60_000 });
      const server = await start(framework, { rateLimits: [{ limiter, key: (request) => String(request.headers['x-tenant']) }] });
      const call = () => send(`${server.url}/ok`, { headers: { 'x-tenant': 't1' } });
      expect((await call()).headers['ratelimit-policy']).toBe(`"tenant-${framework}";q=2;w=60`);
      expect((await call()).status).toBe(200);
      const limited = await call();
      expect(limited.status).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(29);
      expect(limited.headers.ratelimit).toMatch(new RegExp(`^"tenant-${framework}";r=0;t=\\d+$`));
      expect(limited.json()).toMatchObject({ error: { code: 'ERR_BALLAST_SHED', reason: 'rateLimited' } });
    },
  );
});

describe('Fastify encapsulation', () => {
  it('limits the routes of the context that registers the plugin, not its siblings, and works per route', async () => {
    const limiter = new ConcurrencyLimiter({ limit: 1 });
    const perRoute = new KeyedRateLimiter({ name: 'route', limit: 1, windowMs: 60_000 });
    const app = Fastify();
    const held = gate();
    await app.register(async (limited) => {
      await limited.register(onFastify.admissionControl({ limiter }));
      limited.get('/limited/wait', async () => {
        await held.promise;
        return 'done';
      });
      limited.get('/limited/ok', async () => 'ok');
    });
    app.get('/free', async () => 'free');
    app.get('/one', { onRequest: onFastify.rateLimit({ limiter: perRoute }).onRequest }, async () => 'one');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    try {
      const waiting = send(`${url}/limited/wait`);
      await eventually(() => expect(limiter.inflight).toBe(1));
      expect((await send(`${url}/limited/ok`)).status).toBe(503);
      expect((await send(`${url}/free`)).status).toBe(200);
      expect((await send(`${url}/free`)).status).toBe(200);
      expect((await send(`${url}/one`)).status).toBe(200);
      const second = await send(`${url}/one`);
      expect(second.status).toBe(429);
      expect((await send(`${url}/free`)).headers.ratelimit).toBeUndefined();
      held.open();
      expect((await waiting).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('registers plugins with a name Fastify reports, and two of them in one context', async () => {
    const app = Fastify();
    await app.register(onFastify.rateLimit({ limiter: new KeyedRateLimiter({ name: 'a', limit: 10 }) }));
    await app.register(onFastify.rateLimit({ limiter: new KeyedRateLimiter({ name: 'b', limit: 10 }) }));
    app.get('/', async () => 'ok');
    await app.ready();
    expect(app.hasPlugin('@ballast/backpressure rateLimit')).toBe(true);
    const response = await app.inject({ method: 'GET', url: '/' });
    expect(response.headers['ratelimit-policy']).toBe('"a";q=10;w=1, "b";q=10;w=1');
    await app.close();
  });
});

describe('Express middleware', () => {
  it('are named functions', () => {
    expect(onExpress.admissionControl({ limiter: new ConcurrencyLimiter() }).name).toBe('admissionControl');
    expect(onExpress.rateLimit({ limiter: new KeyedRateLimiter({ limit: 1 }) }).name).toBe('rateLimit');
    expect(onFastify.rateLimit({ limiter: new KeyedRateLimiter({ limit: 1 }) }).onRequest.name).toBe('rateLimit');
  });
});
