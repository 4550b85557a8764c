import { request } from 'node:http';
import { connect } from 'node:net';
import { type AppEnv, type Listening, listen, memoryLogger, silentLogger } from '@ballast/app-shared';
import { isInvalidOptionError } from '@ballast/common';
import { eventually } from '@ballast/test/http';
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createGateway, type Gateway, type GatewayOptions, resolveClientRateLimit } from './index.ts';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const o of open.splice(0).reverse()) await o.close();
});

interface Seen {
  id: string;
  path: string;
  query: Record<string, string>;
  bytes: number;
  headers: Record<string, string>;
}

/** A stand-in API server: answers /healthz, echoes what it received, or answers `status`. */
async function upstream(id: string, behaviour: { status?: number; headers?: Record<string, string> } = {}): Promise<Listening> {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.all('*', async (c) => {
    const body = await c.req.arrayBuffer();
    const seen: Seen = { id, path: c.req.path, query: c.req.query(), bytes: body.byteLength, headers: c.req.header() };
    return c.json(seen, (behaviour.status ?? 200) as 200, behaviour.headers ?? {});
  });
  return served(await listen(app.fetch));
}

function served<T extends { close(): Promise<void> }>(thing: T): T {
  open.push(thing);
  return thing;
}

async function gatewayOver(
  servers: Array<{ url: string }>,
  options: Partial<GatewayOptions> = {},
): Promise<{ gateway: Gateway; url: string; ops: string }> {
  const gateway = createGateway({
    upstreams: servers.map((s, i) => ({ id: `api-${i + 1}`, url: s.url })),
    healthIntervalMs: 50,
    acceptablePauseMs: 100,
    phiThreshold: 3,
    logger: silentLogger(),
    ...options,
  });
  served(gateway);
  const server = served(await listen(gateway.app.fetch));
  const ops = served(await listen(gateway.ops.fetch));
  return { gateway, url: server.url, ops: ops.url };
}

/** `bytes` long, starting like a JPEG (the gateway refuses bodies that are no image by their first bytes). */
const image = (bytes: number): Buffer => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(Math.max(0, bytes - 3))]);

const post = (url: string, query = 'width=10', body: Uint8Array | string = image(100), headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/resize?${query}`, { method: 'POST', body, headers });

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  return ((await res.json()) as { error: { code: string; message: string } }).error;
}

/** Sends one raw HTTP/1.1 request, the target and headers exactly as written; resolves with the status and body. */
function raw(
  url: string,
  target: string,
  method = 'GET',
  headers: string[] = [],
  body: Buffer = Buffer.alloc(0),
): Promise<{ status: number; body: string }> {
  const { port } = new URL(url);
  const head = [`${method} ${target} HTTP/1.1`, 'Host: x', 'Connection: close', ...headers, `Content-Length: ${body.length}`];
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () =>
      socket.write(Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), body])),
    );
    let text = '';
    socket.on('data', (chunk) => {
      text += String(chunk);
    });
    socket.on('end', () =>
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) }),
    );
    socket.on('error', reject);
  });
}

/** GET `target` from the local address `from` (127.0.0.2 is another client on loopback): status, error code, Retry-After. */
function getFrom(url: string, target: string, from: string): Promise<[number, string, string | undefined]> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${target}`, { localAddress: from, agent: false }, (res) => {
      let text = '';
      res.on('data', (chunk) => {
        text += String(chunk);
      });
      res.on('end', () => {
        const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '';
        resolve([res.statusCode ?? 0, code, res.headers['retry-after']]);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const rawStatus = async (url: string, target: string, method = 'GET'): Promise<number> => (await raw(url, target, method)).status;

describe('gateway: forwarding', () => {
  it('spreads requests over the upstreams and forwards path, query, body and request id', async () => {
    const servers = await Promise.all(['a', 'b', 'c'].map((id) => upstream(id)));
    const { url } = await gatewayOver(servers);
    const seen = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const res = await post(url, 'width=10', image(100), { 'x-request-id': `r${i}` });
      const body = (await res.json()) as Seen;
      expect(body).toMatchObject({ path: '/v1/resize', query: { width: '10' }, bytes: 100, headers: { 'x-request-id': `r${i}` } });
      expect(res.headers.get('x-upstream')).toBe(`api-${body.id.charCodeAt(0) - 96}`);
      seen.set(body.id, (seen.get(body.id) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(['a', 'b', 'c']);
  });

  it('makes a request id when the client sends none, forwards it, and logs it with the upstream', async () => {
    const { logger, entries } = memoryLogger();
    const { url } = await gatewayOver([await upstream('a')], { logger });
    const res = await post(url);
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await res.json()) as Seen).headers['x-request-id']).toBe(requestId);
    expect(entries).toEqual([
      expect.objectContaining({ level: 'info', service: 'gateway', msg: 'request', requestId, upstream: 'api-1', status: 200 }),
    ]);
    // A client's id is kept when it is a plain token, replaced otherwise (it lands in every log line).
    for (const [sent, kept] of [
      ['order-17/a', true],
      ['x'.repeat(129), false],
      ['{"level":"error"}', false],
    ] as const) {
      const r = await post(url, 'width=1', image(1), { 'x-request-id': sent });
      const upstreamSaw = ((await r.json()) as Seen).headers['x-request-id'];
      expect([r.headers.get('x-request-id') === sent, upstreamSaw === r.headers.get('x-request-id')]).toEqual([kept, true]);
    }
  });

  it('replaces client forwarding headers with its own, and drops headers the Connection header names', async () => {
    const { url } = await gatewayOver([await upstream('a')]);
    // Raw, since fetch will not send a Connection header.
    const res = await raw(
      url,
      '/v1/resize?width=10',
      'POST',
      [
        'X-Forwarded-For: 6.6.6.6',
        'X-Forwarded-Host: evil.example',
        'X-Real-IP: 6.6.6.6',
        'Forwarded: for=6.6.6.6',
        'Connection: close, x-secret',
        'X-Secret: hop',
      ],
      image(4),
    );
    expect(res.status).toBe(200);
    const { headers } = JSON.parse(res.body.slice(res.body.indexOf('{'), res.body.lastIndexOf('}') + 1)) as Seen;
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers.forwarded).toBe('for=127.0.0.1;host=x;proto=http');
    expect(headers['x-real-ip']).toBeUndefined();
    expect(headers['x-forwarded-host']).toBe('x');
    expect(headers['x-secret']).toBeUndefined();
  });

  it('keeps and extends the forwarding headers of a trusted proxy', async () => {
    const { url } = await gatewayOver([await upstream('a')], { trustedProxies: ['loopback'] });
    const res = await post(url, 'width=10', image(1), { 'x-forwarded-for': '203.0.113.9' });
    expect(((await res.json()) as Seen).headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
  });
});

describe('gateway: exposure', () => {
  it('serves only the public API on the public port, whatever the spelling; operations on the ops port', async () => {
    const { url, ops } = await gatewayOver([await upstream('a')]);
    for (const target of [
      '/metrics',
      '/%6detrics',
      '/gateway/stats',
      '/healthz',
      '/v1/../metrics',
      '/v1/resize/../../metrics',
      '//metrics',
      '/V1/resize',
    ]) {
      expect([target, await rawStatus(url, target)]).toEqual([target, 404]);
    }
    expect(await rawStatus(url, '/v1/resize', 'GET')).toBe(405);
    expect(await rawStatus(url, '/v1/jobs/abc%2F..%2Fmetrics')).toBe(404);
    // Rendition sets: their lists in the query, commas and colons plain or encoded; set ids with their packed plan.
    expect(await rawStatus(url, '/v1/renditions?widths=320,640&formats=webp%2Cavif&effort=avif:2', 'GET')).toBe(405);
    expect(await rawStatus(url, '/v1/renditions/acme-0b5e-uuid-AQFAQAA_-', 'GET')).toBe(200);
    expect(await rawStatus(url, '/v1/renditions/../metrics', 'GET')).toBe(404);
    expect(await rawStatus(url, '/v1/renditions/acme.x', 'GET')).toBe(404);
    expect(await rawStatus(url, '/v1/renditions?widths=1%2F..', 'POST')).toBe(404);
    expect((await fetch(`${ops}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${ops}/readyz`)).json()).toMatchObject({ ready: true, upstreamsUp: 1 });
    expect(await (await fetch(`${ops}/metrics`)).text()).toContain('ballast_gateway_upstream_up{upstream="api-1"} 1');
    expect(await (await fetch(`${ops}/gateway/stats`)).json()).toMatchObject({ strategy: 'p2c', breakers: { 'api-1': 'closed' } });
  });

  it('forwards GET /v1/usage (the caller’s usage) with a period, and nothing else under it', async () => {
    const { url } = await gatewayOver([await upstream('a')]);
    for (const target of ['/v1/usage', '/v1/usage?period=2026-11', '/v1/usage?period=2026-11-30']) {
      expect([target, await rawStatus(url, target)]).toEqual([target, 200]);
    }
    for (const target of ['/v1/usage?debug=1', '/v1/usage/../metrics', '/v1/usage?period=%2e%2e', '/v1/usages']) {
      expect([target, await rawStatus(url, target)]).toEqual([target, 404]);
    }
    expect(await rawStatus(url, '/v1/usage', 'POST')).toBe(405);
  });

  it('refuses a body that is no image in an accepted format with 415, before an API server sees it', async () => {
    let reached = 0;
    const app = new Hono();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('*', (c) => {
      reached++;
      return c.json({});
    });
    const { url } = await gatewayOver([served(await listen(app.fetch))]);
    for (const body of ['<svg xmlns="http://www.w3.org/2000/svg"/>', '%PDF-1.7', 'plain text']) {
      const res = await post(url, 'width=1', body);
      expect([res.status, (await errorOf(res)).code]).toEqual([415, 'ERR_BALLAST_IMAGE_UNSUPPORTED']);
    }
    expect(reached).toBe(0);
    const { url: withSvg } = await gatewayOver([served(await listen(app.fetch))], { inputFormats: ['svg'] });
    expect((await post(withSvg, 'width=1', '<svg xmlns="http://www.w3.org/2000/svg"/>')).status).toBe(200);
    expect(() => createGateway({ upstreams: [], inputFormats: ['bmp' as never] })).toThrow(/inputFormats/);
  });

  it('answers failures with documented codes and no internal text', async () => {
    const app = new Hono<AppEnv>();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('*', (c) => {
      c.env.incoming?.socket.destroy(); // dies mid-request: "socket hang up" on the gateway's side
      return new Promise<Response>(() => {});
    });
    const { url } = await gatewayOver([served(await listen(app.fetch))]);
    const res = await post(url);
    expect(res.status).toBe(502);
    const text = await res.text();
    expect(JSON.parse(text).error.code).toBe('ERR_BALLAST_UPSTREAM_UNREACHABLE');
    expect(text).not.toMatch(/hang up|ECONN|127\.0\.0\.1|:\d{4,5}/);
  });
});

describe('gateway: failures', () => {
  it('resends requests that never reached a dead upstream, and the detector takes it out of rotation', async () => {
    const servers = await Promise.all(['a', 'b', 'c'].map((id) => upstream(id)));
    const { gateway, url } = await gatewayOver(servers);
    await servers[1]?.close(); // api-2 dies: connections are refused
    for (let i = 0; i < 30; i++) {
      const res = await post(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-upstream')).not.toBe('api-2');
      await res.arrayBuffer();
    }
    await eventually(() => expect(gateway.balancer.stats().endpoints.find((e) => e.id === 'api-2')?.state).toBe('down'));
  });

  it('never resends a request that reached an upstream, whatever happened to it there', async () => {
    let reached = 0;
    const app = new Hono<AppEnv>();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('/v1/resize', async (c) => {
      reached++;
      await c.req.arrayBuffer();
      if (c.req.query('case') === 'fail') return c.json({ error: { code: 'ERR_BALLAST_INTERNAL', message: 'boom' } }, 500);
      c.env.incoming?.socket.destroy(); // dies mid-request
      return new Promise<Response>(() => {});
    });
    const servers = [served(await listen(app.fetch)), served(await listen(app.fetch))];
    const { url } = await gatewayOver(servers);
    for (const [which, status] of [
      ['crash', 502],
      ['fail', 500],
    ] as const) {
      reached = 0;
      const res = await post(url, `case=${which}`);
      expect(res.status).toBe(status);
      await res.arrayBuffer();
      expect(reached).toBe(1);
    }
  });

  it('opens the circuit of an upstream that keeps failing', async () => {
    const servers = [await upstream('a'), await upstream('bad', { status: 500 })];
    const { gateway, url } = await gatewayOver(servers, { strategy: 'round-robin', breakerResetMs: 60_000, ejectAfterFailures: 0 });
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) {
      const res = await post(url);
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(gateway.breaker('api-2')?.state).toBe('open');
    // Once open, requests picked for api-2 never reach it and go to api-1 instead.
    expect(statuses.slice(-10)).toEqual(Array(10).fill(200));
  });

  it('does not count an upstream shedding load (503) as failing', async () => {
    const { gateway, url } = await gatewayOver([await upstream('busy', { status: 503 })], { throttle: false });
    for (let i = 0; i < 30; i++) {
      const res = await post(url);
      expect(res.status).toBe(503);
      await res.arrayBuffer();
    }
    expect(gateway.breaker('api-1')?.state).toBe('closed');
    expect(gateway.balancer.stats().endpoints[0]?.failures).toBe(0);
  });

  it('does not resend once the retry budget is spent', async () => {
    const servers = [await upstream('a'), await upstream('b')];
    const { gateway, url } = await gatewayOver(servers, {
      strategy: 'round-robin',
      retryBudgetRatio: 0,
      minRetriesPerSec: 0,
      healthIntervalMs: 60_000,
    });
    await servers[0]?.close();
    const statuses = new Map<number, number>();
    for (let i = 0; i < 6; i++) {
      const res = await post(url);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 502) expect((await errorOf(res)).code).toBe('ERR_BALLAST_UPSTREAM_UNREACHABLE');
      else await res.arrayBuffer();
    }
    expect(statuses.get(502)).toBeGreaterThan(0);
    expect(statuses.get(200)).toBeGreaterThan(0);
    expect(gateway.balancer.stats().endpoints.find((e) => e.id === 'api-1')?.failures).toBeGreaterThan(0);
  });

  it('answers 503 when no upstream can be reached, and 413 for an oversized body', async () => {
    const servers = [await upstream('a')];
    const { url } = await gatewayOver(servers, { maxBodyBytes: 1000, maxAttempts: 1 });
    const big = await post(url, 'width=1', image(2000));
    expect([big.status, (await errorOf(big)).code]).toEqual([413, 'ERR_BALLAST_BODY_TOO_LARGE']);
    await servers[0]?.close();
    const res = await post(url);
    expect([502, 503]).toContain(res.status);
    expect((await errorOf(res)).code).toMatch(/^ERR_BALLAST_(UPSTREAM_UNREACHABLE|NO_ENDPOINT)$/);
  });

  it('holds at most maxPerUpstream requests on one API server: the next is answered 503 without reaching it', async () => {
    let release: () => void = () => {};
    let reached = 0;
    const app = new Hono();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('/v1/resize', async (c) => {
      reached++;
      await new Promise<void>((r) => {
        release = r;
      });
      return c.json({ ok: true });
    });
    const { url } = await gatewayOver([served(await listen(app.fetch))], { maxPerUpstream: 1, maxAttempts: 1 });
    const first = post(url);
    await eventually(() => expect(reached).toBe(1));
    const second = await post(url);
    expect([second.status, (await errorOf(second)).code, reached]).toEqual([503, 'ERR_BALLAST_OVERLOADED', 1]);
    release();
    expect((await first).status).toBe(200);
  });

  it('cuts an upstream that does not answer within the request’s deadline, and closes its request', async () => {
    let closedByGateway = 0;
    const app = new Hono<AppEnv>();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('/v1/resize', (c) => {
      c.env.outgoing?.once('close', () => closedByGateway++);
      return new Promise<Response>(() => {}); // stuck
    });
    const { url } = await gatewayOver([served(await listen(app.fetch))], { deadlineGraceMs: 50, upstreamTimeoutMs: 60_000 });
    const res = await post(url, 'width=1&deadlineMs=100');
    expect([res.status, (await errorOf(res)).code]).toEqual([504, 'ERR_BALLAST_UPSTREAM_TIMEOUT']);
    await eventually(() => expect(closedByGateway).toBe(1));
  });
});

describe('gateway: hostile clients', () => {
  it('turns work away itself, before reading the body, while the API servers shed', async () => {
    let reached = 0;
    const app = new Hono();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('*', (c) => {
      reached++;
      return c.json({ error: { code: 'ERR_BALLAST_OVERLOADED', message: 'full' } }, 503, { 'x-ballast-shed': 'queueTimeout' });
    });
    const { gateway, url, ops } = await gatewayOver([served(await listen(app.fetch))], { throttle: { k: 1.5, minRequests: 10 } });
    const codes = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const res = await post(url, 'width=1', image(1000));
      expect(res.status).toBe(503);
      const { code } = await errorOf(res);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    expect(codes.get('ERR_BALLAST_THROTTLED')).toBeGreaterThan(10);
    expect(reached).toBe(codes.get('ERR_BALLAST_OVERLOADED'));
    expect(await (await fetch(`${ops}/metrics`)).text()).toMatch(/ballast_gateway_throttled_total [1-9]/);
    expect(gateway.breaker('api-1')?.state).toBe('closed');
  });

  it('does not let clients that have not sent their bodies throttle anyone', async () => {
    const { url, ops } = await gatewayOver([await upstream('a')], { throttle: { k: 2, minRequests: 5 } });
    // Twenty uploads that stall after their first bytes: in flight, never answered.
    const stalled = Array.from({ length: 20 }, () => {
      const controller = new AbortController();
      const body = new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(10));
        },
      });
      const pending = fetch(`${url}/v1/resize?width=1`, {
        method: 'POST',
        body,
        duplex: 'half',
        signal: controller.signal,
      } as RequestInit).catch(() => undefined);
      return { controller, pending };
    });
    await eventually(async () => {
      const stats = (await (await fetch(`${ops}/gateway/stats`)).json()) as { bodies: { usedBytes: number } };
      expect(stats.bodies.usedBytes).toBe(200);
    });
    for (let i = 0; i < 20; i++) expect((await post(url)).status).toBe(200);
    const stats = (await (await fetch(`${ops}/gateway/stats`)).json()) as {
      throttle: { requests: number; accepts: number; throttled: number };
    };
    expect(stats.throttle).toMatchObject({ requests: 20, accepts: 20, throttled: 0 });
    for (const s of stalled) s.controller.abort();
    await Promise.all(stalled.map((s) => s.pending));
  });

  it('names the client to the API servers itself: a client cannot claim to be another, nor have it dropped', async () => {
    const { url } = await gatewayOver([await upstream('a')]);
    const res = await raw(
      url,
      '/v1/resize?width=10',
      'POST',
      ['X-Ballast-Client: 198.51.100.7', 'Connection: close, x-ballast-client'],
      image(4),
    );
    const { headers } = JSON.parse(res.body.slice(res.body.indexOf('{'), res.body.lastIndexOf('}') + 1)) as Seen;
    expect(headers['x-ballast-client']).toBe('127.0.0.1');
  });

  it('does not throttle everyone for one client over its own limits, nor for a full lane of costly work', async () => {
    let n = 0;
    const app = new Hono();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('*', (c) => {
      n++;
      if (n % 2 === 0) return c.json({ error: { code: 'ERR_BALLAST_CLIENT_LIMIT', message: 'share' } }, 429, { 'retry-after': '1' });
      return c.json({ error: { code: 'ERR_BALLAST_OVERLOADED', message: 'lane' } }, 503, { 'x-ballast-shed': 'costly' });
    });
    const { url, ops } = await gatewayOver([served(await listen(app.fetch))], { throttle: { k: 1.5, minRequests: 10 }, holdRefusedMs: 0 });
    const statuses = new Set<number>();
    for (let i = 0; i < 60; i++) statuses.add((await post(url, 'width=1', image(100))).status);
    expect([...statuses].sort()).toEqual([429, 503]);
    expect(n).toBe(60); // every one reached the API server: none turned away by the throttle
    const stats = (await (await fetch(`${ops}/gateway/stats`)).json()) as { throttle: { throttled: number } };
    expect(stats.throttle.throttled).toBe(0);
  });

  it('answers a client that repeats a refused request itself until its Retry-After, before reading the body', async () => {
    let reached = 0;
    const app = new Hono();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('*', (c) => {
      reached++;
      if (c.req.query('format') !== 'avif') return c.json({});
      return c.json({ error: { code: 'ERR_BALLAST_CLIENT_LIMIT', message: 'share' } }, 429, { 'retry-after': '13' });
    });
    const { url, ops } = await gatewayOver([served(await listen(app.fetch))]);
    const costly = 'format=avif&width=1024&height=1024';
    expect((await post(url, costly, image(1000))).status).toBe(429);
    for (let i = 0; i < 5; i++) {
      const again = await post(url, costly, image(1000));
      expect([again.status, (await errorOf(again)).code, again.headers.get('retry-after')]).toEqual([
        429,
        'ERR_BALLAST_CLIENT_LIMIT',
        expect.stringMatching(/^1[23]$/),
      ]);
    }
    expect(reached).toBe(1);
    // Another request of the same client, and the same request with other credentials, go through.
    expect((await post(url, 'width=10', image(10))).status).toBe(200);
    expect((await post(url, costly, image(1000), { authorization: 'Bearer another' })).status).toBe(429);
    expect(reached).toBe(3);
    const stats = (await (await fetch(`${ops}/gateway/stats`)).json()) as { refusals: { remembered: number; refused: number } };
    expect(stats.refusals).toEqual({ remembered: 2, refused: 5 });
  });

  it('limits each address’s request rate, junk included: one address over it leaves another’s alone', async () => {
    // A burst of 5 and almost no refill: the sixth request of an address in this test is over its rate.
    const { url, ops } = await gatewayOver([await upstream('a')], { rateLimit: { perSec: 0.01, burst: 5 } });
    const junk = [];
    for (let i = 0; i < 8; i++) junk.push(await getFrom(url, '/metrics', '127.0.0.2'));
    expect(junk.slice(0, 5)).toEqual(Array(5).fill([404, 'ERR_BALLAST_NOT_FOUND', undefined]));
    expect(junk.slice(5)).toEqual(Array(3).fill([429, 'ERR_BALLAST_RATE_LIMITED', expect.stringMatching(/^\d+$/)]));
    expect(Number(junk[5]?.[2])).toBeGreaterThan(60); // 1 request per 100 s
    for (let i = 0; i < 5; i++) expect((await post(url)).status).toBe(200); // from 127.0.0.1: its own rate
    const stats = (await (await fetch(`${ops}/gateway/stats`)).json()) as { rateLimit: unknown };
    expect(stats.rateLimit).toMatchObject({ keys: 2, allowed: 10, limited: 3 });
    expect(await (await fetch(`${ops}/metrics`)).text()).toContain('ballast_gateway_rate_limited_total 3');
  });

  it('refuses an invalid rate limit, naming the option, and turns it off with perSec 0 or false', () => {
    expect(() => createGateway({ upstreams: [], rateLimit: { perSec: -1 } })).toThrow(/rateLimit\.perSec/);
    expect(() => createGateway({ upstreams: [], rateLimit: { burst: 0 } })).toThrow(/rateLimit\.burst/);
    expect([resolveClientRateLimit({ perSec: 0 }), resolveClientRateLimit(false)]).toEqual([false, false]);
    expect(resolveClientRateLimit(undefined)).toEqual({ perSec: 100, burst: 200, maxClients: 100_000 });
  });

  it('refuses bodies with 503 once its body budget is spent', async () => {
    const { url, ops } = await gatewayOver([await upstream('a')], { bodyBudgetBytes: 1500 });
    const controller = new AbortController();
    const holding = fetch(`${url}/v1/resize?width=1`, {
      method: 'POST',
      body: new ReadableStream({
        start(c) {
          c.enqueue(new Uint8Array(1000));
        },
      }),
      duplex: 'half',
      signal: controller.signal,
    } as RequestInit).catch(() => undefined);
    await eventually(async () => {
      const res = await post(url, 'width=1', image(1000));
      expect([res.status, (await errorOf(res)).code]).toEqual([503, 'ERR_BALLAST_BODY_BUDGET']);
    });
    controller.abort();
    await holding;
    await eventually(async () => expect((await post(url, 'width=1', image(1000))).status).toBe(200));
    // Everything the refused and the abandoned requests held is given back.
    expect(await (await fetch(`${ops}/gateway/stats`)).json()).toMatchObject({ inflight: 0, bodies: { usedBytes: 0 } });
  });
});

describe('gateway lifecycle', () => {
  it('refuses an unknown strategy, naming the option', () => {
    let error: unknown;
    try {
      createGateway({ upstreams: [], strategy: 'fastest' as never });
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error) && (error as { option: string }).option).toBe('strategy');
  });

  it('leaves no timer behind after close', async () => {
    vi.useFakeTimers();
    const gateway = createGateway({ upstreams: [{ id: 'a', url: 'http://127.0.0.1:9' }], logger: silentLogger() });
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await gateway.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
