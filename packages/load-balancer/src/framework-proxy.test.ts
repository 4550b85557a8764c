/**
 * The Express and Fastify proxies against real Express 5 and Fastify 5 servers on
 * loopback, in front of real upstream servers: the same cases for both.
 */
import { eventually, listen, open, send } from '@ballast/test/http';
import express, { type Express } from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import * as onExpress from './express.ts';
import * as onFastify from './fastify.ts';
import { hashAffinity, LoadBalancer, roundRobin } from './index.ts';
import { echo, hang, refusingUrl, useCleanup } from './testing/upstreams.ts';

const { defer, upstream } = useCleanup();

type Framework = 'express' | 'fastify';
type Options = Omit<onExpress.BalancedProxyOptions & onFastify.BalancedProxyOptions, 'balancer'>;

interface Served {
  url: string;
  balancer: LoadBalancer;
}

/**
 * A real Express or Fastify server on loopback proxying `/api` (and everything under it)
 * over `addresses`; `setup` adds what runs before the proxy. Closed after the test.
 */
async function serveProxy(
  framework: Framework,
  addresses: string[],
  options: Options = {},
  setup: { express?: (app: Express) => void; fastify?: (app: FastifyInstance) => void } = {},
): Promise<Served> {
  const balancer = new LoadBalancer({
    endpoints: addresses.map((address, i) => ({ id: `u${i}`, address })),
    strategy: options.key ? hashAffinity() : roundRobin(),
  });
  let url: string;
  if (framework === 'express') {
    const app = express();
    setup.express?.(app);
    const proxy = onExpress.balancedProxy({ balancer, ...options });
    app.use('/api', proxy);
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ handlerSaw: error.message });
    });
    const served = await listen(app);
    url = served.url;
    defer(async () => {
      await served.close();
      await proxy.close();
      balancer.close();
    });
  } else {
    const app = Fastify();
    setup.fastify?.(app);
    await app.register(onFastify.balancedProxy({ balancer, ...options }), { prefix: '/api' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    defer(async () => {
      await app.close();
      balancer.close();
    });
  }
  return { url, balancer };
}

describe.each(['express', 'fastify'] as const)('%s balancedProxy (real servers)', (framework) => {
  it('forwards method, whole path, query, headers and body, and balances over the upstreams', async () => {
    const a = await upstream(echo('a'));
    const b = await upstream(echo('b'));
    const served = await serveProxy(framework, [a.url, b.url]);
    const first = await send(`${served.url}/api/items/7?w=200`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custom': 'yes', forwarded: 'for=6.6.6.6' },
      body: '{"name":"seven"}',
    });
    expect(first.status).toBe(200);
    const seen = first.json() as { id: string; method: string; url: string; body: string; headers: Record<string, string> };
    expect(seen).toMatchObject({ method: 'POST', url: '/api/items/7?w=200', body: '{"name":"seven"}' });
    expect(seen.headers['x-custom']).toBe('yes');
    expect(seen.headers['content-type']).toBe('application/json');
    // The client's forged Forwarded is replaced: the peer is not a trusted proxy.
    expect(seen.headers.forwarded).toMatch(/^for=127\.0\.0\.1;host="127\.0\.0\.1:\d+";proto=http$/);
    const second = await send(`${served.url}/api`);
    expect((second.json() as { url: string }).url).toBe('/api');
    expect(new Set([seen.id, (second.json() as { id: string }).id])).toEqual(new Set(['a', 'b']));
    expect(second.headers['x-upstream']).toBeDefined();
    expect(served.balancer.stats().inFlight).toBe(0);
  });

  it('serves concurrent requests, each to an upstream, releasing every pick', async () => {
    const a = await upstream(echo('a'));
    const b = await upstream(echo('b'));
    const served = await serveProxy(framework, [a.url, b.url]);
    const all = await Promise.all(
      Array.from({ length: 12 }, (_, i) => send(`${served.url}/api/n/${i}`, { method: 'PUT', body: `body ${i}` })),
    );
    expect(all.map((r) => r.status)).toEqual(Array(12).fill(200));
    expect(all.map((r) => (r.json() as { body: string }).body)).toEqual(Array.from({ length: 12 }, (_, i) => `body ${i}`));
    expect(a.requests.length + b.requests.length).toBe(12);
    expect(a.requests.length).toBe(6);
    expect(served.balancer.stats().inFlight).toBe(0);
  });

  it('gives key, path and timeoutMs the framework’s request', async () => {
    const a = await upstream(echo('a'));
    const b = await upstream(echo('b'));
    type Headed = { headers: Record<string, string | string[] | undefined> };
    const header = (request: Headed, name: string) => String(request.headers[name] ?? '');
    const served = await serveProxy(framework, [a.url, b.url], {
      key: (request) => header(request, 'x-session'),
      path: (request) => `/v2${new URL(header(request, 'x-original') || '/', 'http://x').pathname}`,
      timeoutMs: (request: Headed) => Number(header(request, 'x-deadline-ms') || 30_000),
    });
    const ids = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const res = await send(`${served.url}/api/x`, { headers: { 'x-session': 'same', 'x-original': '/photos' } });
      const body = res.json() as { id: string; url: string };
      expect(body.url).toBe('/v2/photos');
      ids.add(body.id);
    }
    expect(ids.size).toBe(1);
    const late = await send(`${served.url}/api/x`, { headers: { 'x-deadline-ms': '0' } });
    expect(late.status).toBe(504);
    expect(late.json()).toMatchObject({ error: { code: 'ERR_BALLAST_TIMEOUT' } });
    expect(a.requests.length + b.requests.length).toBe(4);
  });

  it('answers 502 naming the upstream when it cannot be reached, and 503 with Retry-After when none is available', async () => {
    const served = await serveProxy(framework, [await refusingUrl()]);
    const refused = await send(`${served.url}/api/x`);
    expect(refused.status).toBe(502);
    expect(refused.headers['content-type']).toMatch(/^application\/json/);
    expect(refused.json()).toMatchObject({ error: { code: 'ERR_BALLAST_UPSTREAM', upstream: 'u0' } });
    served.balancer.close();
    const none = await send(`${served.url}/api/x`);
    expect(none.status).toBe(503);
    expect(none.headers['retry-after']).toBe('1');
    expect(none.json()).toMatchObject({ error: { code: 'ERR_BALLAST_NO_ENDPOINT' } });
  });

  it('lets onRejected answer, in the framework’s shape', async () => {
    const served = await serveProxy(framework, [await refusingUrl()], {
      onRejected: async (_request, reply, error) => {
        const code = (error as { code?: string }).code;
        if ('raw' in reply) await reply.code(418).send({ mine: code });
        else reply.status(418).json({ mine: code });
      },
    });
    const res = await send(`${served.url}/api/x`);
    expect(res.status).toBe(418);
    expect(res.json()).toEqual({ mine: 'ERR_BALLAST_UPSTREAM' });
  });

  it('aborts the upstream request when the client goes away, and releases the pick as cancelled', async () => {
    const u = await upstream(hang());
    const served = await serveProxy(framework, [u.url]);
    const client = open(`${served.url}/api/wait`);
    await eventually(() => expect(u.requests.length).toBe(1));
    expect(served.balancer.stats().inFlight).toBe(1);
    client.abandon();
    await eventually(() => expect(u.aborted.length).toBe(1));
    await eventually(() => expect(served.balancer.stats().inFlight).toBe(0));
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ cancelled: 1, failures: 0 });
  });

  it('runs what is mounted before it, and a thrown error there never reaches an upstream', async () => {
    const u = await upstream(echo('u'));
    const served = await serveProxy(
      framework,
      [u.url],
      {},
      {
        express: (app) =>
          app.use((req, res, next) => {
            if (req.headers['x-deny'] !== undefined) throw new Error('denied before the proxy');
            res.setHeader('x-before', 'set');
            next();
          }),
        fastify: (app) =>
          app.addHook('onRequest', async (request, reply) => {
            if (request.headers['x-deny'] !== undefined) throw new Error('denied before the proxy');
            reply.header('x-before', 'set');
          }),
      },
    );
    const ok = await send(`${served.url}/api/x`);
    expect(ok.status).toBe(200);
    expect(ok.headers['x-before']).toBe('set');
    expect((await send(`${served.url}/api/x`, { headers: { 'x-deny': '1' } })).status).toBe(500);
    expect(u.requests).toHaveLength(1);
  });

  it('refuses invalid options at construction, naming the option', () => {
    const adapter = framework === 'express' ? onExpress : onFastify;
    expect(() => adapter.balancedProxy({} as never)).toThrow(/^balancer must be/);
    const balancer = new LoadBalancer({ endpoints: [{ id: 'a', address: 'http://127.0.0.1:1' }] });
    expect(() => adapter.balancedProxy({ balancer, key: 'ip' as never })).toThrow(/^key must be a function/);
    expect(() => adapter.balancedProxy({ balancer, timeoutMs: -1 })).toThrow(/^timeoutMs must be/);
    balancer.close();
  });
});

describe('Express balancedProxy and body parsers', () => {
  it('sends a body express.raw() read, whole, and refuses one a parser turned into an object, saying so', async () => {
    const u = await upstream(echo('u'));
    const balancer = new LoadBalancer({ endpoints: [{ id: 'u', address: u.url }] });
    const app = express();
    app.use('/raw', express.raw({ type: '*/*' }), onExpress.balancedProxy({ balancer }));
    app.use('/json', express.json(), onExpress.balancedProxy({ balancer }));
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ handlerSaw: error.message });
    });
    const served = await listen(app);
    defer(async () => {
      await served.close();
      balancer.close();
    });
    const raw = await send(`${served.url}/raw/up`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(raw.json()).toMatchObject({ url: '/raw/up', body: '{"a":1}' });
    const parsed = await send(`${served.url}/json/up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(parsed.status).toBe(500);
    expect((parsed.json() as { handlerSaw: string }).handlerSaw).toMatch(/mount balancedProxy\(\) before body parsers/);
    expect(u.requests).toHaveLength(1);
  });
});

describe('Fastify balancedProxy', () => {
  it('answers HEAD, and closes its connection pools when Fastify closes', async () => {
    const u = await upstream(echo('u'));
    const balancer = new LoadBalancer({ endpoints: [{ id: 'u', address: u.url }] });
    const app = Fastify();
    const plugin = onFastify.balancedProxy({ balancer });
    await app.register(plugin, { prefix: '/api' });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const head = await send(`${url}/api/x`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    await app.close();
    balancer.close();
    expect(u.requests.map((r) => r.method)).toEqual(['HEAD']);
  });
});
