import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { Agent } from 'undici';
import { describe, expect, it } from 'vitest';
import { LoadBalancer, roundRobin } from './index.ts';
import { type NodeProxyOptions, nodeProxy, type UpstreamResponse } from './node.ts';
import { echo, endless, expectForgedHeadersReplaced, hang, refusingUrl, useCleanup } from './testing/upstreams.ts';

const { defer, upstream } = useCleanup();

interface Served {
  url: string;
  balancer: LoadBalancer;
  /** Server-side response objects the proxy handled, to check for leftover listeners. */
  responses: ServerResponse[];
  /** Resolves when every exchange so far is over. */
  settled(): Promise<void>;
}

/** A real HTTP server on loopback running `nodeProxy` over `addresses`, closed after the test. */
async function serveProxy(addresses: string[], options: Partial<NodeProxyOptions> = {}): Promise<Served> {
  const balancer = new LoadBalancer({ endpoints: addresses.map((address, i) => ({ id: `u${i}`, address })), strategy: roundRobin() });
  const proxy = nodeProxy({ balancer, ...options });
  const responses: ServerResponse[] = [];
  const exchanges: Promise<void>[] = [];
  const server = createServer((req, res) => {
    responses.push(res);
    exchanges.push(proxy(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await proxy.close();
    balancer.close();
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    balancer,
    responses,
    settled: () => Promise.all(exchanges).then(() => undefined),
  };
}

/** No response listener of the proxy is left once exchanges are over. */
async function expectNoLeftovers(served: Served): Promise<void> {
  await served.settled();
  for (const res of served.responses) {
    expect(res.listenerCount('drain')).toBe(0);
    // Node's own 'close' bookkeeping aside, the proxy's listener is gone.
    expect(res.listeners('close').some((l) => l.name.includes('onClose'))).toBe(false);
  }
  expect(served.balancer.stats().inFlight).toBe(0);
}

describe('nodeProxy', () => {
  it('forwards method, path, query, headers and body, replacing forged forwarding headers', async () => {
    const u = await upstream(echo('one', 0.25));
    const served = await serveProxy([u.url]);
    await expectForgedHeadersReplaced(served.url, u.url);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ inFlight: 0, successes: 1, load: 0.25 });
    await expectNoLeftovers(served);
  });

  it('keeps the forwarding headers of a trusted proxy and appends to them', async () => {
    const u = await upstream(echo('one'));
    const served = await serveProxy([u.url], { trustedProxies: ['loopback'] });
    const res = await fetch(`${served.url}/x`, { headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https' } });
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    expect(headers).toMatchObject({ 'x-forwarded-for': '203.0.113.7, 127.0.0.1', 'x-forwarded-proto': 'https' });
    expect(headers.forwarded).toMatch(/^for=203\.0\.113\.7;proto=https, for=127\.0\.0\.1;host=/);
  });

  it('balances over the upstreams with the balancer’s strategy', async () => {
    const a = await upstream(echo('a'));
    const b = await upstream(echo('b'));
    const served = await serveProxy([a.url, b.url]);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${served.url}/x`);
      ids.push(res.headers.get('x-upstream') ?? '?');
      await res.arrayBuffer();
    }
    expect(ids).toEqual(['a', 'b', 'a', 'b']);
  });

  it('streams both ways: the first chunk arrives while the upstream is still writing', async () => {
    let upstreamResponse: ServerResponse | undefined;
    const u = await upstream((req, res) => {
      upstreamResponse = res;
      res.writeHead(200, { 'content-type': 'text/plain' });
      req.on('data', (chunk: Buffer) => res.write(chunk.toString().toUpperCase()));
    });
    const served = await serveProxy([u.url]);
    const client = request(`${served.url}/upper`, { method: 'PUT', headers: { 'transfer-encoding': 'chunked' } });
    const response = new Promise<IncomingMessage>((resolve) => client.once('response', resolve));
    client.write('abc');
    const res = await response;
    const firstChunk = await new Promise<string>((resolve) => res.once('data', (c: Buffer) => resolve(c.toString())));
    expect(firstChunk).toBe('ABC');
    // The pick is held while the body streams.
    expect(served.balancer.stats().inFlight).toBe(1);
    client.end('def');
    const rest: string[] = [];
    res.on('data', (c: Buffer) => rest.push(c.toString()));
    await expect.poll(() => rest.join('')).toBe('DEF');
    upstreamResponse!.end('!');
    await new Promise((resolve) => res.once('end', resolve));
    expect(rest.join('')).toBe('DEF!');
    await expectNoLeftovers(served);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ successes: 1, failures: 0 });
  });

  it('carries a large body both ways intact, with backpressure', async () => {
    const u = await upstream((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
    });
    const served = await serveProxy([u.url]);
    const body = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32LE(i, i);
    const res = await fetch(`${served.url}/echo`, { method: 'POST', body });
    const back = Buffer.from(await res.arrayBuffer());
    expect(back.length).toBe(body.length);
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
    await expectNoLeftovers(served);
  });

  it('does not buffer for a client that stops reading: the upstream feels the backpressure', async () => {
    const source = endless();
    const u = await upstream(source.handler);
    const served = await serveProxy([u.url]);
    const client = request(`${served.url}/big`);
    client.end();
    const res = await new Promise<IncomingMessage>((resolve) => client.once('response', resolve));
    res.pause();
    await expect.poll(() => source.stats().blocked).toBe(true);
    const stalledAt = source.stats().written;
    // Give the proxy every chance to keep reading; it must not: the upstream stays blocked.
    await new Promise((resolve) => setImmediate(resolve));
    expect(source.stats().written).toBe(stalledAt);
    expect(source.stats().written).toBeLessThan(64 * 1024 * 1024);
    res.destroy();
    await expect.poll(() => u.aborted.length).toBe(1);
    await expectNoLeftovers(served);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ cancelled: 1, failures: 0 });
  });

  it('closes the upstream response when the client leaves mid-body, and releases the pick as cancelled', async () => {
    let upstreamResponse: ServerResponse | undefined;
    const u = await upstream((_req, res) => {
      upstreamResponse = res;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first;');
    });
    const dispatcher = new Agent({ keepAliveTimeout: 4_000 });
    defer(() => dispatcher.close());
    const served = await serveProxy([u.url], { dispatcher });
    const client = request(`${served.url}/events`);
    client.end();
    const res = await new Promise<IncomingMessage>((resolve) => client.once('response', resolve));
    expect(await new Promise<string>((resolve) => res.once('data', (c: Buffer) => resolve(c.toString())))).toBe('first;');
    upstreamResponse!.write('second;');
    expect(await new Promise<string>((resolve) => res.once('data', (c: Buffer) => resolve(c.toString())))).toBe('second;');
    client.destroy();
    await expect.poll(() => u.aborted.length).toBe(1);
    await expectNoLeftovers(served);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ cancelled: 1, failures: 0, successes: 0 });
    // No upstream connection is left running or half-used.
    const stats = dispatcher.stats[new URL(u.url).origin];
    expect(stats?.running ?? 0).toBe(0);
  });

  it('propagates a client abort during the upload upstream without counting a failure', async () => {
    const u = await upstream((req, res) => {
      res.writeHead(200);
      req.on('data', () => {});
    });
    const served = await serveProxy([u.url]);
    const client = request(`${served.url}/upload`, { method: 'POST', headers: { 'content-length': '1000000' } });
    client.on('error', () => {});
    client.write('part one');
    await expect.poll(() => u.requests.length).toBe(1);
    client.destroy();
    await expect.poll(() => u.aborted.length).toBe(1);
    await expectNoLeftovers(served);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ failures: 0, cancelled: 1 });
  });

  it('serves other clients while one dribbles its upload: the stalled body holds only its own upstream connection', async () => {
    const u = await upstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.writeHead(200, { 'content-type': 'text/plain' }).end(`${Buffer.concat(chunks).length}`));
    });
    const served = await serveProxy([u.url]);
    const slow = request(`${served.url}/upload`, { method: 'POST', headers: { 'content-length': '1000' } });
    slow.on('error', () => {});
    slow.write('x'.repeat(10));
    await expect.poll(() => u.requests.length).toBe(1);
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${served.url}/quick`, { method: 'POST', body: 'abc' });
      expect(await res.text()).toBe('3');
    }
    expect(served.balancer.stats().inFlight).toBe(1);
    slow.destroy();
    await expect.poll(() => u.aborted.length).toBe(1);
    await expectNoLeftovers(served);
  });

  it('propagates a client abort while waiting for the upstream, and releases the pick', async () => {
    const u = await upstream(hang());
    const served = await serveProxy([u.url]);
    const client = request(`${served.url}/wait`);
    client.on('error', () => {});
    client.end();
    await expect.poll(() => u.requests.length).toBe(1);
    expect(served.balancer.stats().inFlight).toBe(1);
    client.destroy();
    await expect.poll(() => u.aborted.length).toBe(1);
    await expectNoLeftovers(served);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ cancelled: 1, failures: 0 });
  });

  it('cuts the client response off when the upstream breaks off mid-body, counting a failure', async () => {
    const u = await upstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
      res.write('partial;', () => req.socket.destroy());
    });
    const served = await serveProxy([u.url]);
    const res = await fetch(`${served.url}/x`);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    await expectNoLeftovers(served);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ failures: 1, cancelled: 0 });
  });

  it('answers 502 naming the upstream when the connection is refused', async () => {
    const served = await serveProxy([await refusingUrl()]);
    const res = await fetch(`${served.url}/x`);
    expect(res.status).toBe(502);
    const { error } = (await res.json()) as { error: { code: string; upstream: string; message: string } };
    expect(error).toMatchObject({ code: 'ERR_BALLAST_UPSTREAM', upstream: 'u0' });
    expect(error.message).toMatch(/upstream u0 \(http:\/\/127\.0\.0\.1:\d+\) could not be reached \(ECONNREFUSED\)/);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ failures: 1, inFlight: 0 });
  });

  it('retries a request that never reached an upstream on another one, body included', async () => {
    const good = await upstream(echo('good'));
    const served = await serveProxy([await refusingUrl(), good.url], { maxAttempts: 2 });
    const res = await fetch(`${served.url}/upload`, { method: 'POST', body: 'the whole body' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ id: 'good', body: 'the whole body' });
    const [refused, ok] = served.balancer.stats().endpoints;
    expect(refused).toMatchObject({ failures: 1, inFlight: 0 });
    expect(ok).toMatchObject({ successes: 1, inFlight: 0 });
  });

  it('sends a body the caller buffered, whole, with its length, on every attempt', async () => {
    const good = await upstream(echo('good'));
    const balancer = new LoadBalancer({
      endpoints: [await refusingUrl(), good.url].map((address, i) => ({ id: `u${i}`, address })),
      strategy: roundRobin(),
    });
    const bodies = new WeakMap<IncomingMessage, Buffer>();
    const proxy = nodeProxy({ balancer, maxAttempts: 2, body: (req) => bodies.get(req) });
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      bodies.set(req, Buffer.concat(chunks)); // read whole before proxying, as an edge that buffers does
      await proxy(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await proxy.close();
      balancer.close();
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/upload`;
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('chunked '));
        controller.enqueue(new TextEncoder().encode('upload'));
        controller.close();
      },
    });
    const res = await fetch(url, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(200);
    const seen = (await res.json()) as { id: string; body: string; headers: Record<string, string> };
    expect(seen).toMatchObject({ id: 'good', body: 'chunked upload', headers: { 'content-length': '14' } });
    expect(seen.headers['transfer-encoding']).toBeUndefined();
    expect(balancer.stats().endpoints[0]).toMatchObject({ failures: 1, inFlight: 0 });
  });

  it('does not retry once the request reached an upstream', async () => {
    const broken = await upstream((req) => req.socket.destroy());
    const good = await upstream(echo('good'));
    const served = await serveProxy([broken.url, good.url], { maxAttempts: 3 });
    const res = await fetch(`${served.url}/x`, { method: 'POST', body: 'once' });
    expect(res.status).toBe(502);
    await res.arrayBuffer();
    expect(broken.requests).toHaveLength(1);
    expect(good.requests).toHaveLength(0);
  });

  it('asks the retry budget before each retry', async () => {
    const good = await upstream(echo('good'));
    let asked = 0;
    let requests = 0;
    const budget = {
      onRequest: () => requests++,
      tryAcquire: () => {
        asked++;
        return false;
      },
    };
    const served = await serveProxy([await refusingUrl(), good.url], { maxAttempts: 3, retryBudget: budget });
    const res = await fetch(`${served.url}/x`);
    expect(res.status).toBe(502);
    await res.arrayBuffer();
    expect({ asked, requests }).toEqual({ asked: 1, requests: 1 });
    expect(good.requests).toHaveLength(0);
  });

  it('answers 504 when the upstream hangs past timeoutMs, and closes the upstream request', async () => {
    const u = await upstream(hang());
    const served = await serveProxy([u.url], { timeoutMs: 150 });
    const res = await fetch(`${served.url}/slow`);
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({
      error: { code: 'ERR_BALLAST_UPSTREAM', upstream: 'u0', message: expect.stringMatching(/did not answer in time/) },
    });
    await expect.poll(() => u.aborted.length).toBe(1);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ failures: 1, inFlight: 0 });
  });

  it('derives the timeout per request, and answers 504 at once when none is left', async () => {
    const u = await upstream(hang());
    const served = await serveProxy([u.url], { timeoutMs: (req) => Number(req.headers['x-deadline-ms'] ?? 30_000) });
    const spent = await fetch(`${served.url}/x`, { headers: { 'x-deadline-ms': '0' } });
    expect(spent.status).toBe(504);
    await spent.arrayBuffer();
    expect(u.requests).toHaveLength(0);
    const short = await fetch(`${served.url}/x`, { headers: { 'x-deadline-ms': '100' } });
    expect(short.status).toBe(504);
    await short.arrayBuffer();
    expect(u.requests).toHaveLength(1);
  });

  it('counts the time a hook spends before sending against the request’s deadline', async () => {
    const u = await upstream(echo('one'));
    const served = await serveProxy([u.url], {
      timeoutMs: 50,
      attempt: async (_context, send) => {
        // A per-upstream queue that took longer than the request had.
        await new Promise((resolve) => setTimeout(resolve, 120));
        return send();
      },
    });
    const res = await fetch(`${served.url}/x`);
    expect(res.status).toBe(504);
    await res.arrayBuffer();
    expect(u.requests).toHaveLength(0);
    await expectNoLeftovers(served);
  });

  it('answers 503 with Retry-After when no upstream is available', async () => {
    const served = await serveProxy(['http://127.0.0.1:1']);
    served.balancer.close();
    const res = await fetch(`${served.url}/x`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toMatchObject({ error: { code: 'ERR_BALLAST_NO_ENDPOINT' } });
  });

  it('passes 5xx through and moves traffic off an upstream that keeps failing', async () => {
    const good = await upstream(echo('good'));
    const bad = await upstream((_req, res) => {
      res.writeHead(500).end('broken');
    });
    const served = await serveProxy([good.url, bad.url]);
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${served.url}/x`);
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses.filter((s) => s === 500)).toHaveLength(5);
    expect(served.balancer.stats().endpoints[1]!.state).toBe('ejected');
  });

  it('drops hop-by-hop headers both ways, including those named by Connection', async () => {
    const u = await upstream((req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        connection: 'x-hop',
        'x-hop': '1',
        'proxy-authenticate': 'Basic',
        'x-end-to-end': 'kept',
      });
      res.end(JSON.stringify(req.headers));
    });
    const served = await serveProxy([u.url]);
    const client = request(`${served.url}/x`, {
      headers: {
        connection: 'x-client-hop',
        'x-client-hop': '1',
        te: 'trailers',
        'proxy-authorization': 'Basic c2VjcmV0',
        'x-end-to-end': 'kept',
      },
    });
    client.end();
    const res = await new Promise<IncomingMessage>((resolve) => client.once('response', resolve));
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const seen = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, string>;
    for (const name of ['x-client-hop', 'te', 'proxy-authorization']) expect(seen[name], name).toBeUndefined();
    expect(seen['x-end-to-end']).toBe('kept');
    for (const name of ['x-hop', 'proxy-authenticate']) expect(res.headers[name], name).toBeUndefined();
    expect(res.headers['x-end-to-end']).toBe('kept');
  });

  it('refuses an absolute-form target naming another host and a target that is not a path, and forwards one naming its own host', async () => {
    const u = await upstream(echo('one'));
    const served = await serveProxy([u.url]);
    const { port } = new URL(served.url);
    const raw = (requestLine: string, host: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () =>
          socket.write(`${requestLine}\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
        );
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
    const foreign = await raw('GET http://internal.example:9999/admin?x=1 HTTP/1.1', 'gateway.example');
    expect(foreign).toMatch(/^HTTP\/1\.1 400/);
    expect(foreign).toContain(
      '{"error":{"code":"ERR_BALLAST_BAD_REQUEST","message":"the request target names host internal.example:9999, not gateway.example (Host)"}}',
    );
    const own = await raw('GET http://Gateway.example:80/admin?x=1 HTTP/1.1', 'gateway.example');
    expect(own).toMatch(/^HTTP\/1\.1 200/);
    expect(own).toContain('"url":"/admin?x=1"');
    const star = await raw('OPTIONS * HTTP/1.1', 'x');
    expect(star).toMatch(/^HTTP\/1\.1 400/);
    expect(star).toContain('ERR_BALLAST_BAD_REQUEST');
    expect(u.requests).toHaveLength(1);
    await expectNoLeftovers(served);
  });

  it('answers HEAD and 204 without a body', async () => {
    const u = await upstream((req, res) => {
      if (req.url === '/none') res.writeHead(204).end();
      else res.writeHead(200, { 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
    });
    const served = await serveProxy([u.url]);
    const head = await fetch(`${served.url}/x`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('5');
    expect(await head.text()).toBe('');
    const none = await fetch(`${served.url}/none`);
    expect(none.status).toBe(204);
    expect(await none.text()).toBe('');
    await expectNoLeftovers(served);
  });

  it('runs each attempt through the hook, retrying one it refused on another upstream', async () => {
    const a = await upstream(echo('a'));
    const b = await upstream(echo('b'));
    const seen: Array<{ endpoint: string; attempt: number; aborted: boolean }> = [];
    const served = await serveProxy([a.url, b.url], {
      maxAttempts: 2,
      attempt: async (context, send) => {
        seen.push({ endpoint: context.endpoint.id, attempt: context.attempt, aborted: context.signal.aborted });
        if (context.endpoint.id === 'u0') throw Object.assign(new Error('circuit open'), { code: 'ERR_BALLAST_CIRCUIT_OPEN' });
        const response: UpstreamResponse = await send();
        expect(response).toMatchObject({ status: 200, endpoint: { id: 'u1' } });
        return response;
      },
    });
    const res = await fetch(`${served.url}/x`, { method: 'POST', body: 'kept for the retry' });
    expect(await res.json()).toMatchObject({ id: 'b', body: 'kept for the retry' });
    expect(seen).toEqual([
      { endpoint: 'u0', attempt: 1, aborted: false },
      { endpoint: 'u1', attempt: 2, aborted: false },
    ]);
    expect(a.requests).toHaveLength(0);
    await expectNoLeftovers(served);
  });

  it('answers an error the hook raised itself through onRejected, and aborts a send the hook gave up on', async () => {
    const u = await upstream(hang());
    const rejected: unknown[] = [];
    const served = await serveProxy([u.url], {
      attempt: (_context, send) => {
        const controller = new AbortController();
        setTimeout(() => controller.abort(new Error('breaker timeout')), 50);
        return send(controller.signal);
      },
      onRejected: (error, _req, res) => {
        rejected.push(error);
        res.writeHead(503).end('later');
      },
    });
    const res = await fetch(`${served.url}/x`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('later');
    await expect.poll(() => u.aborted.length).toBe(1);
    expect(rejected).toHaveLength(1);
    await expectNoLeftovers(served);
  });

  it('closes its upstream connections on close()', async () => {
    const u = await upstream(echo('one'));
    const balancer = new LoadBalancer({ endpoints: [{ id: 'u0', address: u.url }] });
    defer(() => balancer.close());
    const proxy = nodeProxy({ balancer });
    const server = createServer((req, res) => void proxy(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`, { headers: { connection: 'close' } });
    await res.arrayBuffer();
    const socket = u.requests[0]!.socket;
    expect(socket.destroyed).toBe(false);
    await proxy.close();
    await expect.poll(() => socket.destroyed).toBe(true);
    await proxy[Symbol.asyncDispose]();
  });

  it('validates its options, naming the one that is wrong', () => {
    const balancer = new LoadBalancer({ endpoints: [{ id: 'u', address: 'http://127.0.0.1:1' }] });
    defer(() => balancer.close());
    expect(() => nodeProxy({} as never)).toThrow('balancer must be a LoadBalancer, got undefined');
    expect(() => nodeProxy({ balancer, key: 'ip' as never })).toThrow(/^key must be a function/);
    expect(() => nodeProxy({ balancer, attempt: {} as never })).toThrow(/^attempt must be a function/);
    expect(() => nodeProxy({ balancer, maxAttempts: 0 })).toThrow(/^maxAttempts must be an integer >= 1/);
    expect(() => nodeProxy({ balancer, timeoutMs: 0 })).toThrow(/^timeoutMs must be/);
    expect(() => nodeProxy({ balancer, retryBudget: {} as never })).toThrow(/^retryBudget must be an object with tryAcquire/);
    expect(() => nodeProxy({ balancer, loadHeader: '' })).toThrow(/^loadHeader must be a non-empty string/);
    expect(() => nodeProxy({ balancer, trustedProxies: ['10.0.0.0/40'] })).toThrow(/^trustedProxies\[0\] must be/);
    expect(() => nodeProxy({ balancer, dispatcher: {} as never })).toThrow(/^dispatcher must be an undici Dispatcher/);
  });
});
