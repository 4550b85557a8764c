/**
 * The Express and Fastify adapters against real Express 5 and Fastify 5 servers on
 * loopback: the same cases for both, through real HTTP requests.
 */
import { eventually, gate, type Listening, listen, open, send } from '@ballast/test/http';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as onExpress from './express.ts';
import * as onFastify from './fastify.ts';
import { BreakerRegistry } from './registry.ts';

type Framework = 'express' | 'fastify';
type Options = onExpress.CircuitBreakerMiddlewareOptions & onFastify.CircuitBreakerMiddlewareOptions;

/**
 * Both servers: `GET /upstream/:name` guarded by a breaker keyed by `:name`, answering
 * `status.value` (0: the handler throws, -1: it waits for `release`), and `GET /route/:id`
 * guarded by a breaker with the default key.
 */
interface Server extends Listening {
  status: number;
  handled: number;
  release(): void;
}

let current: Server | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
  vi.useRealTimers();
});

async function start(framework: Framework, registry: BreakerRegistry, options: Options = {}): Promise<Server> {
  let hold = gate();
  const state = { status: 200, handled: 0 };
  const answer = async (): Promise<number> => {
    state.handled++;
    if (state.status === 0) throw new Error('handler crashed');
    if (state.status === -1) {
      await hold.promise;
      return 200;
    }
    return state.status;
  };
  let listening: Listening;
  if (framework === 'express') {
    const app = express();
    const byName = onExpress.circuitBreaker({ registry, key: (req) => String(req.params.name), ...options });
    app.get('/upstream/:name', byName, async (_req, res) => void res.status(await answer()).send('answer'));
    app.get('/route/:id', onExpress.circuitBreaker({ registry }), (_req, res) => void res.send('route'));
    listening = await listen(app);
  } else {
    const app: FastifyInstance = Fastify();
    await app.register(async (scope) => {
      await scope.register(
        onFastify.circuitBreaker({ registry, key: (request) => String((request.params as { name: string }).name), ...options }),
      );
      scope.get('/upstream/:name', async (_request, reply) => reply.code(await answer()).send('answer'));
    });
    app.get('/route/:id', { onRequest: onFastify.circuitBreaker({ registry }).onRequest }, async () => 'route');
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    listening = { url: `http://127.0.0.1:${port}`, port, server: app.server, close: () => app.close() };
  }
  const server: Server = {
    ...listening,
    get status() {
      return state.status;
    },
    set status(value: number) {
      state.status = value;
    },
    get handled() {
      return state.handled;
    },
    release: () => {
      hold.open();
      hold = gate();
    },
    close: () => {
      server.release();
      registry.close();
      return listening.close();
    },
  };
  current = server;
  return server;
}

describe.each(['express', 'fastify'] as const)('%s circuitBreaker (real server)', (framework) => {
  it('passes answers through while closed, and keys by the route pattern by default', async () => {
    const registry = new BreakerRegistry();
    const server = await start(framework, registry);
    const res = await send(`${server.url}/upstream/a`);
    expect(res.status).toBe(200);
    expect(res.body).toBe('answer');
    await eventually(() => expect(registry.peek('a')?.stats().calls.success).toBe(1));
    await send(`${server.url}/route/1`);
    await send(`${server.url}/route/2`);
    await eventually(() => expect(registry.peek('/route/:id')?.stats().calls.success).toBe(2));
    expect([...registry].map(([key]) => key).sort()).toEqual(['/route/:id', 'a']);
  });

  it('opens on 5xx answers and thrown errors, then answers 503 with Retry-After; other keys are unaffected', async () => {
    let now = 0;
    const registry = new BreakerRegistry({
      clock: { now: () => now },
      breaker: { resetTimeoutMs: 10_000, opossum: { volumeThreshold: 2 } },
    });
    const server = await start(framework, registry);
    server.status = 502;
    expect((await send(`${server.url}/upstream/a`)).status).toBe(502);
    await eventually(() => expect(registry.peek('a')?.stats().calls.result).toBe(1));
    server.status = 0;
    expect((await send(`${server.url}/upstream/a`)).status).toBe(500);
    await eventually(() => expect(registry.peek('a')?.state).toBe('open'));
    now = 2_500;
    server.status = 200;
    const before = server.handled;
    const refused = await send(`${server.url}/upstream/a`);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('8');
    expect(refused.headers['content-type']).toMatch(/^application\/json/);
    expect(refused.json()).toEqual({ error: { code: 'ERR_BALLAST_CIRCUIT_OPEN', message: 'circuit "a" is open' } });
    expect(server.handled).toBe(before);
    expect((await send(`${server.url}/upstream/b`)).status).toBe(200);
  });

  it('a client that goes away cancels the call without counting it', async () => {
    const registry = new BreakerRegistry({ breaker: { opossum: { volumeThreshold: 1 } } });
    const server = await start(framework, registry);
    server.status = -1;
    const client = open(`${server.url}/upstream/hang`);
    await eventually(() => expect(server.handled).toBe(1));
    expect(registry.peek('hang')?.stats().inFlight).toBe(1);
    client.abandon();
    await eventually(() => expect(registry.peek('hang')?.stats().inFlight).toBe(0));
    expect(registry.peek('hang')?.stats().calls).toMatchObject({ ignored: 1, error: 0, timeout: 0 });
    expect(registry.peek('hang')?.state).toBe('closed');
  });

  it('answers 504 when the protected handler does not answer within timeoutMs, and counts a timeout', async () => {
    let now = 0;
    const registry = new BreakerRegistry({ clock: { now: () => now }, breaker: { timeoutMs: 100 } });
    const server = await start(framework, registry);
    server.status = -1;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const pending = send(`${server.url}/upstream/slow`);
    await eventually(() => expect(server.handled).toBe(1));
    now = 100;
    await vi.advanceTimersByTimeAsync(100);
    const res = await pending;
    expect(res.status).toBe(504);
    expect(res.json()).toEqual({ error: { code: 'ERR_BALLAST_TIMEOUT', message: 'timed out after 100 ms' } });
    expect(registry.peek('slow')?.stats().calls.timeout).toBe(1);
    vi.useRealTimers();
    // The handler finishing late changes nothing for the client, nor for the next request.
    server.release();
    server.status = 200;
    expect((await send(`${server.url}/upstream/slow`)).status).toBe(200);
  });

  it('serves concurrent requests, each its own call', async () => {
    const registry = new BreakerRegistry();
    const server = await start(framework, registry);
    server.status = -1;
    const all = Array.from({ length: 6 }, () => send(`${server.url}/upstream/c`));
    await eventually(() => expect(registry.peek('c')?.stats().inFlight).toBe(6));
    server.release();
    expect((await Promise.all(all)).map((r) => r.status)).toEqual(Array(6).fill(200));
    await eventually(() => expect(registry.peek('c')?.stats().calls.success).toBe(6));
    expect(registry.peek('c')?.stats().inFlight).toBe(0);
  });

  it('lets onRejected shape the refusal and isFailure decide what counts', async () => {
    const registry = new BreakerRegistry({ breaker: { opossum: { volumeThreshold: 1 } } });
    const server = await start(framework, registry, {
      isFailure: (res) => res.statusCode === 404,
      onRejected: async (_request, reply, error) => {
        const res = 'raw' in reply ? reply.raw : reply;
        res.statusCode = 503;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ error: error.code }));
      },
    });
    server.status = 404;
    expect((await send(`${server.url}/upstream/x`)).status).toBe(404);
    await eventually(() => expect(registry.peek('x')?.state).toBe('open'));
    const res = await send(`${server.url}/upstream/x`);
    expect(res.status).toBe(503);
    expect(res.json()).toEqual({ error: 'ERR_BALLAST_CIRCUIT_OPEN' });
  });

  it('refuses invalid options at construction, naming the option', () => {
    const adapter = framework === 'express' ? onExpress : onFastify;
    expect(() => adapter.circuitBreaker({ key: 'route' as never })).toThrow(/key must be a function/);
    expect(() => adapter.circuitBreaker({ onRejected: 503 as never })).toThrow(/onRejected must be a function/);
  });
});

describe('Express and Fastify middleware', () => {
  it('are named and expose their registry', () => {
    const registry = new BreakerRegistry();
    const middleware = onExpress.circuitBreaker({ registry });
    expect(middleware.name).toBe('circuitBreaker');
    expect(middleware.registry).toBe(registry);
    const plugin = onFastify.circuitBreaker({ registry });
    expect(plugin.onRequest.name).toBe('circuitBreaker');
    expect(plugin.registry).toBe(registry);
    registry.close();
  });
});
