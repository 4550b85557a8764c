import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { balancedProxy, clientIp } from '../src/hono.ts';
import { hashAffinity, LoadBalancer, roundRobin } from '../src/index.ts';
import { echo, hang, refusingUrl, useCleanup } from './upstreams.ts';

const { defer, upstream } = useCleanup();

function proxyApp(addresses: string[], options: Partial<Parameters<typeof balancedProxy>[0]> = {}) {
  const balancer = new LoadBalancer({
    endpoints: addresses.map((address, i) => ({ id: `u${i}`, address })),
    strategy: roundRobin(),
  });
  defer(() => balancer.close());
  const app = new Hono();
  app.all('/*', balancedProxy({ balancer, ...options }));
  return { app, balancer };
}

describe('balancedProxy', () => {
  it('forwards method, path, query, headers and body, and the answer back', async () => {
    const u = await upstream(echo('one', 0.25));
    const { app, balancer } = proxyApp([u.url], { clientIp: () => '203.0.113.9' });
    const res = await app.request('http://gateway.test/images/1?w=200', {
      method: 'POST',
      headers: {
        'content-type': 'text/plain',
        'x-request-id': 'r-1',
        'x-forwarded-for': '198.51.100.1',
        connection: 'x-secret',
        'x-secret': 's',
      },
      body: 'pixels',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-upstream')).toBe('one');
    expect(res.headers.get('keep-alive')).toBeNull();
    const seen = (await res.json()) as { method: string; url: string; body: string; headers: Record<string, string> };
    expect(seen).toMatchObject({ method: 'POST', url: '/images/1?w=200', body: 'pixels' });
    expect(seen.headers).toMatchObject({
      'x-request-id': 'r-1',
      'x-forwarded-for': '198.51.100.1, 203.0.113.9',
      'x-forwarded-host': 'gateway.test',
      'x-forwarded-proto': 'http',
      host: new URL(u.url).host,
    });
    expect(seen.headers['x-secret']).toBeUndefined();
    expect(balancer.stats().endpoints[0]).toMatchObject({ inFlight: 0, successes: 1, load: 0.25 });
  });

  it('balances over the upstreams with the balancer’s strategy', async () => {
    const a = await upstream(echo('a'));
    const b = await upstream(echo('b'));
    const { app } = proxyApp([a.url, b.url]);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await app.request('/x');
      ids.push(res.headers.get('x-upstream') ?? '?');
      await res.body?.cancel();
    }
    expect(ids).toEqual(['a', 'b', 'a', 'b']);
  });

  it('streams a request body upstream and a response body back', async () => {
    const u = await upstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      req.on('data', (chunk: Buffer) => res.write(chunk.toString().toUpperCase()));
      req.on('end', () => res.end('!'));
    });
    const { app, balancer } = proxyApp([u.url]);
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode('abc'));
        controller.enqueue(encoder.encode('def'));
        controller.close();
      },
    });
    const res = await app.request('/upper', { method: 'PUT', body, duplex: 'half' } as RequestInit);
    // The pick is held until the body is read.
    expect(balancer.stats().inFlight).toBe(1);
    expect(await res.text()).toBe('ABCDEF!');
    expect(balancer.stats().inFlight).toBe(0);
  });

  it('answers 502 naming the upstream when the connection is refused', async () => {
    const { app, balancer } = proxyApp([await refusingUrl()]);
    const res = await app.request('/x');
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: string; code: string; upstream: string; message: string };
    expect(body).toMatchObject({ error: 'Bad Gateway', code: 'ERR_BALLAST_UPSTREAM', upstream: 'u0' });
    expect(body.message).toMatch(/upstream u0 \(http:\/\/127\.0\.0\.1:\d+\) could not be reached \(ECONNREFUSED\)/);
    expect(balancer.stats().endpoints[0]).toMatchObject({ failures: 1, inFlight: 0 });
  });

  it('answers 504 when the upstream hangs past timeoutMs, and closes the upstream request', async () => {
    const u = await upstream(hang());
    const { app, balancer } = proxyApp([u.url], { timeoutMs: 150 });
    const res = await app.request('/slow');
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ error: 'Gateway Timeout', upstream: 'u0' });
    await expect.poll(() => u.aborted.length).toBe(1);
    expect(balancer.stats().endpoints[0]).toMatchObject({ failures: 1, inFlight: 0 });
  });

  it('answers 503 when no upstream is available', async () => {
    const { app, balancer } = proxyApp(['http://127.0.0.1:1'], {});
    balancer.close();
    const res = await app.request('/x');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toMatchObject({ error: 'Service Unavailable', code: 'ERR_BALLAST_NO_ENDPOINT' });
  });

  it('moves traffic off an upstream that keeps failing', async () => {
    const good = await upstream(echo('good'));
    const bad = await upstream((_req, res) => {
      res.writeHead(500).end('broken');
    });
    const { app, balancer } = proxyApp([good.url, bad.url]);
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await app.request('/x');
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    // 5xx passes through until outlier detection ejects the failing upstream after 5 failures.
    expect(statuses.filter((s) => s === 500)).toHaveLength(5);
    expect(balancer.stats().endpoints[1]!.state).toBe('ejected');
  });

  it('propagates a client abort upstream and releases the pick', async () => {
    const u = await upstream(hang());
    const { app, balancer } = proxyApp([u.url]);
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    const client = new AbortController();
    const pending = fetch(`http://127.0.0.1:${port}/wait`, { signal: client.signal }).catch((e: unknown) => e);
    await expect.poll(() => u.requests.length).toBe(1);
    expect(balancer.stats().inFlight).toBe(1);
    client.abort();
    await pending;
    await expect.poll(() => u.aborted.length).toBe(1);
    await expect.poll(() => balancer.stats().inFlight).toBe(0);
    expect(balancer.stats().endpoints[0]).toMatchObject({ cancelled: 1, failures: 0 });
  });

  it('hashes on the client IP under @hono/node-server and reports it in x-forwarded-for', async () => {
    const a = await upstream(echo('a'));
    const b = await upstream(echo('b'));
    const balancer = new LoadBalancer({
      endpoints: [
        { id: 'a', address: a.url },
        { id: 'b', address: b.url },
      ],
      strategy: hashAffinity(),
    });
    defer(() => balancer.close());
    const app = new Hono();
    app.all('/*', balancedProxy({ balancer, key: clientIp }));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/x`);
      const body = (await res.json()) as { id: string; headers: Record<string, string> };
      seen.add(body.id);
      expect(body.headers['x-forwarded-for']).toBe('127.0.0.1');
    }
    expect(seen.size).toBe(1);
  });

  it('lets onRejected shape the error response', async () => {
    const { app } = proxyApp([await refusingUrl()], { onRejected: (c) => c.text('try later', 503) });
    const res = await app.request('/x');
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('try later');
  });

  it('rejects a missing balancer', () => {
    expect(() => balancedProxy({} as never)).toThrow('balancedProxy: options.balancer must be a LoadBalancer');
  });
});
