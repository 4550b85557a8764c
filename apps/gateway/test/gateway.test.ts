import type { IncomingMessage } from 'node:http';
import { type Listening, listen, memoryLogger, silentLogger } from '@ballast/app-shared';
import { isInvalidOptionError } from '@ballast/common';
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createGateway, type Gateway, type GatewayOptions } from '../src/index.ts';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/** A stand-in API server: answers /healthz, echoes requests, or fails on demand. */
async function upstream(id: string, behaviour: { status?: number } = {}): Promise<Listening> {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.all('*', async (c) => {
    const body = await c.req.arrayBuffer();
    return c.json(
      { id, path: c.req.path, query: c.req.query(), bytes: body.byteLength, requestId: c.req.header('x-request-id') },
      (behaviour.status ?? 200) as 200,
    );
  });
  const server = await listen(app.fetch);
  open.push(server);
  return server;
}

async function gatewayOver(servers: Listening[], options: Partial<GatewayOptions> = {}): Promise<{ gateway: Gateway; url: string }> {
  const gateway = createGateway({
    upstreams: servers.map((s, i) => ({ id: `api-${i + 1}`, url: s.url })),
    healthIntervalMs: 50,
    acceptablePauseMs: 100,
    phiThreshold: 3,
    logger: silentLogger(),
    ...options,
  });
  const server = await listen(gateway.app.fetch);
  open.push(gateway, server);
  return { gateway, url: server.url };
}

describe('gateway', () => {
  it('spreads requests over the upstreams and forwards path, query, body and request id', async () => {
    const servers = await Promise.all(['a', 'b', 'c'].map((id) => upstream(id)));
    const { url } = await gatewayOver(servers);
    const seen = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${url}/v1/resize?width=10`, {
        method: 'POST',
        body: Buffer.alloc(100),
        headers: { 'x-request-id': `r${i}` },
      });
      const body = (await res.json()) as { id: string; path: string; query: Record<string, string>; bytes: number; requestId: string };
      expect(body).toMatchObject({ path: '/v1/resize', query: { width: '10' }, bytes: 100, requestId: `r${i}` });
      expect(res.headers.get('x-upstream')).toMatch(/^api-\d$/);
      seen.set(body.id, (seen.get(body.id) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(['a', 'b', 'c']);
  });

  it('makes a request id when the client sends none, forwards it, and logs it with the upstream', async () => {
    const { logger, entries } = memoryLogger();
    const { url } = await gatewayOver([await upstream('a')], { logger });
    const res = await fetch(`${url}/v1/resize`, { method: 'POST', body: Buffer.alloc(10) });
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await res.json()) as { requestId: string }).requestId).toBe(requestId);
    expect(entries).toEqual([expect.objectContaining({ level: 'info', msg: 'request', requestId, upstream: 'api-1', status: 200 })]);
    // A client's id is kept when it is a plain token, replaced otherwise (it lands in every log line).
    for (const [sent, kept] of [
      ['order-17/a', true],
      ['x'.repeat(129), false],
      ['{"level":"error"}', false],
    ] as const) {
      const r = await fetch(`${url}/v1/resize`, { method: 'POST', body: Buffer.alloc(1), headers: { 'x-request-id': sent } });
      await r.arrayBuffer();
      expect(r.headers.get('x-request-id') === sent).toBe(kept);
    }
  });

  it('resends requests that never reached a dead upstream, and the detector takes it out of rotation', async () => {
    const servers = await Promise.all(['a', 'b', 'c'].map((id) => upstream(id)));
    const { gateway, url } = await gatewayOver(servers);
    await servers[1]?.close(); // api-2 dies: connections are refused
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${url}/x`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-upstream')).not.toBe('api-2');
      await res.arrayBuffer();
    }
    const deadline = Date.now() + 5000;
    let state = '';
    while (Date.now() < deadline) {
      state = gateway.balancer.stats().endpoints.find((e) => e.id === 'api-2')?.state ?? '';
      if (state === 'down') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(state).toBe('down');
  });

  it('never resends a request that reached an upstream, whatever happened to it there', async () => {
    let reached = 0;
    const app = new Hono();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('/crash', async (c) => {
      reached++;
      await c.req.arrayBuffer();
      (c.env as { incoming: IncomingMessage }).incoming.socket.destroy(); // dies mid-request
      return new Promise<Response>(() => {});
    });
    app.post('/fail', (c) => {
      reached++;
      return c.json({ error: { code: 'ERR_BALLAST_INTERNAL', message: 'boom' } }, 500);
    });
    const servers = [await listen(app.fetch), await listen(app.fetch)];
    open.push(...servers);
    const { url } = await gatewayOver(servers);
    for (const path of ['/crash', '/fail']) {
      reached = 0;
      const res = await fetch(`${url}${path}`, { method: 'POST', body: Buffer.alloc(10) });
      expect(res.status).toBe(path === '/crash' ? 502 : 500);
      await res.arrayBuffer();
      expect(reached).toBe(1);
    }
  });

  it('opens the circuit of an upstream that keeps failing', async () => {
    const servers = [await upstream('a'), await upstream('bad', { status: 500 })];
    const { gateway, url } = await gatewayOver(servers, { strategy: 'round-robin', breakerResetMs: 60_000, ejectAfterFailures: 0 });
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${url}/x`);
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(gateway.breaker('api-2')?.state).toBe('open');
    // Once open, requests picked for api-2 never reach it and go to api-1 instead.
    expect(statuses.slice(-10).every((s) => s === 200)).toBe(true);
  });

  it('does not count an upstream shedding load (503) as failing', async () => {
    const servers = [await upstream('busy', { status: 503 })];
    const { gateway, url } = await gatewayOver(servers, { throttle: false });
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${url}/x`);
      expect(res.status).toBe(503);
      await res.arrayBuffer();
    }
    expect(gateway.breaker('api-1')?.state).toBe('closed');
  });

  it('turns work away itself, before reading the body, while the API servers shed', async () => {
    let reached = 0;
    const app = new Hono();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('*', (c) => {
      reached++;
      return c.json({ error: { code: 'ERR_BALLAST_OVERLOADED', message: 'full' } }, 503, { 'x-ballast-shed': 'queueTimeout' });
    });
    const busy = await listen(app.fetch);
    open.push(busy);
    const { gateway, url } = await gatewayOver([busy], { throttle: { k: 1.5, minRequests: 10 } });
    const codes = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${url}/v1/resize`, { method: 'POST', body: Buffer.alloc(1000) });
      expect(res.status).toBe(503);
      const code = ((await res.json()) as { error: { code: string } }).error.code;
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    expect(codes.get('ERR_BALLAST_THROTTLED')).toBeGreaterThan(10);
    expect(reached).toBe(codes.get('ERR_BALLAST_OVERLOADED'));
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(/ballast_gateway_throttled_total [1-9]/);
    expect(gateway.breaker('api-1')?.state).toBe('closed');
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
      const res = await fetch(`${url}/x`);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 502)
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_BALLAST_RETRY_BUDGET_EXHAUSTED');
      else await res.arrayBuffer();
    }
    expect(statuses.get(502)).toBeGreaterThan(0);
    expect(statuses.get(200)).toBeGreaterThan(0);
    expect(gateway.balancer.stats().endpoints.find((e) => e.id === 'api-1')?.failures).toBeGreaterThan(0);
  });

  it('answers 502 when no upstream can be reached, and 413 for oversized bodies', async () => {
    const servers = [await upstream('a')];
    const { url } = await gatewayOver(servers, { maxBodyBytes: 1000 });
    expect((await fetch(`${url}/x`, { method: 'POST', body: Buffer.alloc(2000) })).status).toBe(413);
    await servers[0]?.close();
    const res = await fetch(`${url}/x`);
    expect([502, 503]).toContain(res.status);
    expect(((await res.json()) as { error: { code: string } }).error.code).toMatch(/^ERR_BALLAST_/);
  });

  it('serves /healthz, /readyz and /metrics, and refuses an unknown strategy', async () => {
    const { url } = await gatewayOver([await upstream('a')]);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toContain('ballast_gateway_upstream_up');
    let error: unknown;
    try {
      createGateway({ upstreams: [], strategy: 'fastest' as never });
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error)).toBe(true);
  });
});

describe('gateway lifecycle', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  it('leaves no timer behind after close', async () => {
    vi.useFakeTimers();
    const gateway = createGateway({ upstreams: [{ id: 'a', url: 'http://127.0.0.1:9' }], logger: silentLogger() });
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await gateway.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
