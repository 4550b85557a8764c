import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { balancedProxy, clientIp } from './hono.ts';
import { hashAffinity, LoadBalancer, roundRobin } from './index.ts';
import { echo, hang, refusingUrl, useCleanup } from './testing/upstreams.ts';

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

/** Serves `app` on a free loopback port through @hono/node-server, closed after the test. */
async function listen(app: Hono): Promise<string> {
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise((resolve) => server.once('listening', resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** Sends `text` as is on a fresh connection and parses the HTTP/1.1 answer (status and body). */
async function rawRequest(base: string, text: string): Promise<{ status: number; body: string }> {
  const { port, hostname } = new URL(base);
  const socket = connect(Number(port), hostname);
  socket.write(text); // not end(): a half-closed client aborts its request
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  const answer = Buffer.concat(chunks).toString();
  const [head = '', ...rest] = answer.split('\r\n\r\n');
  const chunked = /transfer-encoding: chunked/i.test(head);
  const body = rest.join('\r\n\r\n');
  return {
    status: Number(head.split(' ')[1]),
    body: chunked
      ? body
          .split('\r\n')
          .filter((_, i) => i % 2 === 1)
          .join('')
      : body,
  };
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
      // The peer is not a trusted proxy: the client's own x-forwarded-for is replaced.
      'x-forwarded-for': '203.0.113.9',
      forwarded: 'for=203.0.113.9;host=gateway.test;proto=http',
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

  it('streams the answer chunk by chunk, and a client leaving mid-body closes the upstream response', async () => {
    let upstreamResponse: ServerResponse | undefined;
    const u = await upstream((_req, res) => {
      upstreamResponse = res;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first;');
    });
    const { app, balancer } = proxyApp([u.url]);
    const base = await listen(app);
    const client = new AbortController();
    const res = await fetch(`${base}/events`, { signal: client.signal });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    // The first chunk arrives while the upstream is still writing: nothing is buffered.
    expect(decoder.decode((await reader.read()).value)).toBe('first;');
    upstreamResponse!.write('second;');
    expect(decoder.decode((await reader.read()).value)).toBe('second;');
    expect(balancer.stats().inFlight).toBe(1);
    client.abort();
    await expect.poll(() => u.aborted.length).toBe(1);
    await expect.poll(() => balancer.stats().inFlight).toBe(0);
    expect(balancer.stats().endpoints[0]).toMatchObject({ cancelled: 1, failures: 0, successes: 0 });
  });

  it('counts an upstream that breaks off mid-body as a failure and releases the pick', async () => {
    const u = await upstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial;', () => req.socket.destroy());
    });
    const { app, balancer } = proxyApp([u.url]);
    const res = await app.request('/x');
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    expect(balancer.stats().endpoints[0]).toMatchObject({ inFlight: 0, failures: 1, cancelled: 0 });
  });

  it('propagates a client abort during the upload upstream', async () => {
    const u = await upstream((req, res) => {
      res.writeHead(200);
      req.on('data', () => {});
    });
    const { app, balancer } = proxyApp([u.url]);
    const base = await listen(app);
    const client = new AbortController();
    let push!: (chunk: string) => void;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (chunk) => controller.enqueue(new TextEncoder().encode(chunk));
      },
    });
    const pending = fetch(`${base}/upload`, { method: 'POST', body, duplex: 'half', signal: client.signal } as RequestInit).catch(
      (e: unknown) => e,
    );
    push('part one');
    await expect.poll(() => u.requests.length).toBe(1);
    client.abort();
    await pending;
    await expect.poll(() => u.aborted.length).toBe(1);
    await expect.poll(() => balancer.stats().inFlight).toBe(0);
    expect(balancer.stats().endpoints[0]).toMatchObject({ failures: 0 });
  });

  it('drops hop-by-hop headers both ways, including those named by Connection', async () => {
    const u = await upstream((req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        connection: 'x-hop',
        'x-hop': '1',
        'proxy-authenticate': 'Basic',
        trailer: 'x-checksum',
        'x-end-to-end': 'kept',
      });
      res.end(JSON.stringify(req.headers));
    });
    const { app } = proxyApp([u.url]);
    const res = await app.request('/x', {
      headers: {
        connection: 'x-client-hop',
        'x-client-hop': '1',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        trailer: 'x-checksum',
        upgrade: 'websocket',
        'proxy-authorization': 'Basic c2VjcmV0',
        'x-end-to-end': 'kept',
      },
    });
    const seen = (await res.json()) as Record<string, string>;
    for (const name of ['x-client-hop', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization']) {
      expect(seen[name], name).toBeUndefined();
    }
    expect(seen['x-end-to-end']).toBe('kept');
    for (const name of ['x-hop', 'proxy-authenticate', 'trailer', 'connection']) expect(res.headers.get(name), name).toBeNull();
    expect(res.headers.get('x-end-to-end')).toBe('kept');
  });

  it('refuses an absolute-form target naming another host with a 400, and forwards one naming its own', async () => {
    const seen: string[] = [];
    const u = await upstream((req, res) => {
      seen.push(`${req.url} ${req.headers['x-forwarded-host']}`);
      echo('one')(req, res);
    });
    const { app } = proxyApp([u.url]);
    const base = await listen(app);
    const host = new URL(base).host;
    const evil = await rawRequest(base, `GET http://evil.example/admin HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(evil.status).toBe(400);
    expect(JSON.parse(evil.body)).toEqual({
      error: { code: 'ERR_BALLAST_BAD_REQUEST', message: `the request target names host evil.example, not ${host} (Host)` },
    });
    expect(seen).toEqual([]); // nothing reached an upstream
    const own = await rawRequest(base, `GET http://${host}/x?y=1 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expect(own.status).toBe(200);
    expect(seen).toEqual([`/x?y=1 ${host}`]);
  });

  it('replaces forwarding headers a client forged', async () => {
    const u = await upstream(echo('one'));
    const { app } = proxyApp([u.url], { clientIp: () => '198.51.100.20', trustedProxies: ['10.0.0.0/8'] });
    const res = await app.request('http://images.example.com/x', {
      headers: {
        'x-forwarded-for': '127.0.0.1',
        'x-forwarded-host': 'admin.internal',
        'x-forwarded-proto': 'https',
        'x-real-ip': '127.0.0.1',
        forwarded: 'for=127.0.0.1;host=admin.internal;proto=https',
      },
    });
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    expect(headers).toMatchObject({
      'x-forwarded-for': '198.51.100.20',
      'x-forwarded-host': 'images.example.com',
      'x-forwarded-proto': 'http',
      forwarded: 'for=198.51.100.20;host=images.example.com;proto=http',
    });
    expect(headers['x-real-ip']).toBeUndefined();
  });

  it('keeps x-forwarded-host and -proto set by a trusted proxy in front, and appends to x-forwarded-for', async () => {
    const u = await upstream(echo('one'));
    const { app } = proxyApp([u.url], { clientIp: () => '10.1.1.1', trustedProxies: ['10.0.0.0/8'] });
    const res = await app.request('http://internal:8080/x', {
      headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-host': 'images.example.com', 'x-forwarded-proto': 'https' },
    });
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    expect(headers).toMatchObject({
      'x-forwarded-for': '203.0.113.7, 10.1.1.1',
      'x-forwarded-host': 'images.example.com',
      'x-forwarded-proto': 'https',
      // The proxy in front sent only X-Forwarded-*: its chain is carried over into Forwarded.
      forwarded: 'for=203.0.113.7;host=images.example.com;proto=https, for=10.1.1.1;host="internal:8080";proto=http',
    });
  });

  it('answers 503 naming the reason when every upstream is draining', async () => {
    const { app, balancer } = proxyApp(['http://127.0.0.1:1', 'http://127.0.0.1:2']);
    await balancer.drain('u0');
    await balancer.drain('u1');
    const res = await app.request('/x');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: { code: 'ERR_BALLAST_NO_ENDPOINT', message: 'no endpoint available: every endpoint is draining or unhealthy' },
    });
  });

  it('answers 502 naming the upstream when the connection is refused', async () => {
    const { app, balancer } = proxyApp([await refusingUrl()]);
    const res = await app.request('/x');
    expect(res.status).toBe(502);
    const body = (await res.json()) as { error: { code: string; upstream: string; message: string } };
    expect(body).toMatchObject({ error: { code: 'ERR_BALLAST_UPSTREAM', upstream: 'u0' } });
    expect(body.error.message).toMatch(/upstream u0 \(http:\/\/127\.0\.0\.1:\d+\) could not be reached \(ECONNREFUSED\)/);
    expect(balancer.stats().endpoints[0]).toMatchObject({ failures: 1, inFlight: 0 });
  });

  it('answers 504 when the upstream hangs past timeoutMs, and closes the upstream request', async () => {
    const u = await upstream(hang());
    const { app, balancer } = proxyApp([u.url], { timeoutMs: 150 });
    const res = await app.request('/slow');
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({
      error: { code: 'ERR_BALLAST_UPSTREAM', upstream: 'u0', message: expect.stringContaining('in time') },
    });
    await expect.poll(() => u.aborted.length).toBe(1);
    expect(balancer.stats().endpoints[0]).toMatchObject({ failures: 1, inFlight: 0 });
  });

  it('answers 503 when no upstream is available', async () => {
    const { app, balancer } = proxyApp(['http://127.0.0.1:1'], {});
    balancer.close();
    const res = await app.request('/x');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toMatchObject({ error: { code: 'ERR_BALLAST_NO_ENDPOINT' } });
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

  it('validates its options, naming the one that is wrong', () => {
    const balancer = new LoadBalancer({ endpoints: [{ id: 'u', address: 'http://127.0.0.1:1' }] });
    defer(() => balancer.close());
    expect(() => balancedProxy({} as never)).toThrow('balancer must be a LoadBalancer, got undefined');
    expect(() => balancedProxy({ balancer, key: 'ip' as never })).toThrow(/^key must be a function/);
    expect(() => balancedProxy({ balancer, path: '/x' as never })).toThrow(/^path must be a function/);
    expect(() => balancedProxy({ balancer, clientIp: 1 as never })).toThrow(/^clientIp must be a function/);
    expect(() => balancedProxy({ balancer, onRejected: {} as never })).toThrow(/^onRejected must be a function/);
    expect(() => balancedProxy({ balancer, isFailure: 500 as never })).toThrow(/^isFailure must be a function/);
    expect(() => balancedProxy({ balancer, fetch: null as never })).toThrow(/^fetch must be a function/);
    expect(() => balancedProxy({ balancer, loadHeader: '' })).toThrow(/^loadHeader must be a non-empty string/);
    expect(() => balancedProxy({ balancer, timeoutMs: 0 })).toThrow(/^timeoutMs must be/);
  });
});
