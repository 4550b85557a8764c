import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { LoadBalancer, roundRobin } from './index.ts';
import { type NetProxyOptions, netProxy } from './net-proxy.ts';
import { echo, endless, expectForgedHeadersReplaced, hang, refusingUrl, type Upstream, useCleanup } from './testing/upstreams.ts';

const { defer, upstream } = useCleanup();

interface Served {
  port: number;
  url: string;
  balancer: LoadBalancer;
  proxy: ReturnType<typeof netProxy>;
}

/** `netProxy` on a free loopback port over `addresses`, closed after the test. */
async function serveProxy(addresses: string[], options: Partial<NetProxyOptions> = {}): Promise<Served> {
  const balancer = new LoadBalancer({ endpoints: addresses.map((address, i) => ({ id: `u${i}`, address })), strategy: roundRobin() });
  const proxy = netProxy({ balancer, ...options });
  const { port } = await proxy.listen(0, '127.0.0.1');
  defer(async () => {
    await proxy.close();
    balancer.close();
  });
  return { port, url: `http://127.0.0.1:${port}`, balancer, proxy };
}

/** Sends `data` on a new connection and collects everything until the proxy closes it. */
function raw(port: number, data: string | Buffer, { end = false } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => (end ? socket.end(data) : socket.write(data)));
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  });
}

/** A connection that reads responses as they come. */
function open(port: number): Promise<{ socket: Socket; received: () => string; waitFor: (pattern: RegExp) => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const waiters: Array<() => void> = [];
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      for (const w of waiters.splice(0)) w();
    });
    socket.on('close', () => {
      for (const w of waiters.splice(0)) w();
    });
    socket.on('error', reject);
    socket.on('connect', () =>
      resolve({
        socket,
        received: () => text,
        waitFor: (pattern) =>
          new Promise((done, fail) => {
            const check = (): void => {
              if (pattern.test(text)) done(text);
              else if (socket.destroyed) fail(new Error(`closed before ${pattern}: ${text}`));
              else waiters.push(check);
            };
            check();
          }),
      }),
    );
    defer(() => void socket.destroy());
  });
}

const closed = (socket: Socket): Promise<void> =>
  new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

function expectIdle(served: Served): void {
  expect(served.balancer.stats().inFlight).toBe(0);
  expect(served.proxy.stats().inFlight).toBe(0);
}

describe('netProxy', () => {
  it('forwards method, path, query, headers and body, replacing forged forwarding headers, and reports load', async () => {
    const u = await upstream(echo('one', 0.25));
    const served = await serveProxy([u.url]);
    const res = await expectForgedHeadersReplaced(served.url, u.url);
    // Hop-by-hop fields of the upstream's answer are not passed on.
    expect(res.headers.get('keep-alive')).toBeNull();
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ inFlight: 0, successes: 1, load: 0.25 });
    expectIdle(served);
  });

  it('drops hop-by-hop fields and those Connection names both ways, and passes the other lines as received', async () => {
    const u = await upstream((req, res) => {
      req.resume();
      res.writeHead(200, {
        Connection: 'keep-alive, X-Private',
        'X-Private': 'internal',
        'Proxy-Authenticate': 'Basic',
        Upgrade: 'h2c',
        'X-Kept-Case': 'Value',
        'content-length': '2',
      });
      res.end('ok');
    });
    const served = await serveProxy([u.url]);
    const hops =
      'Keep-Alive: timeout=9\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\n';
    // The usual request: no field nominated by Connection.
    const plain = await raw(
      served.port,
      `GET /a HTTP/1.1\r\nHost: x\r\nX-Mixed-Case:  v1 \r\n${hops}X-Real-IP: 6.6.6.6\r\nConnection: close\r\n\r\n`,
    );
    expect(plain).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(plain).toContain('X-Kept-Case: Value\r\n');
    expect(plain).toContain('content-length: 2\r\n');
    for (const gone of [/x-private/i, /proxy-authenticate/i, /upgrade/i, /keep-alive/i]) expect(plain).not.toMatch(gone);
    // A request whose Connection names another field.
    await raw(served.port, `GET /b HTTP/1.1\r\nHost: x\r\nX-Secret: s\r\nX-Other: o\r\n${hops}Connection: close, X-Secret\r\n\r\n`);
    const [a, b] = u.requests;
    expect(a!.rawHeaders).toContain('X-Mixed-Case');
    expect(a!.headers['x-mixed-case']).toBe('v1');
    expect(b!.headers['x-other']).toBe('o');
    for (const req of [a!, b!]) {
      for (const name of ['keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection', 'x-secret', 'x-real-ip']) {
        expect(req.headers[name]).toBeUndefined();
      }
      expect(req.headers['x-forwarded-for']).toBe('127.0.0.1');
    }
    expectIdle(served);
  });

  it('balances with the strategy and keeps one upstream connection per client connection in steady state', async () => {
    const a = await upstream(echo('a'));
    const b = await upstream(echo('b'));
    const served = await serveProxy([a.url, b.url]);
    const c = await open(served.port);
    let expected = '';
    for (let i = 0; i < 4; i++) {
      c.socket.write(`GET /n${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expected += i % 2 === 0 ? 'a' : 'b';
      await c.waitFor(new RegExp(`"url":"/n${i}"`));
    }
    const order = [...c.received().matchAll(/x-upstream: (\w)/g)].map((m) => m[1]).join('');
    expect(order).toBe(expected);
    // Sequential requests reuse the pooled upstream connections: one socket per upstream.
    expect(new Set(a.requests.map((r) => r.socket)).size).toBe(1);
    expect(new Set(b.requests.map((r) => r.socket)).size).toBe(1);
    expect(served.proxy.stats().idleUpstreams).toBe(2);
    expectIdle(served);
  });

  it('passes chunked bodies through in both directions, byte for byte, and answers HEAD and 204 without a body', async () => {
    const u = await upstream((req, res) => {
      if (req.url === '/none') {
        res.writeHead(204).end();
        return;
      }
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-length': '5' }).end();
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'x-te': String(req.headers['transfer-encoding']) });
        res.write('got:');
        setTimeout(() => res.end(Buffer.concat(chunks)), 5);
      });
    });
    const served = await serveProxy([u.url]);
    const c = await open(served.port);
    c.socket.write('POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n');
    c.socket.write('2\r\nde\r\n0\r\nx-trailer: t\r\n\r\n');
    const text = await c.waitFor(/\r\n0\r\n\r\n$/);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).toContain('x-te: chunked');
    expect(text).toContain('transfer-encoding: chunked');
    expect(text).toContain('4\r\ngot:\r\n5\r\nabcde\r\n0\r\n\r\n');
    c.socket.write('HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /none HTTP/1.1\r\nHost: x\r\n\r\n');
    const after = await c.waitFor(/204 No Content[\s\S]*\r\n\r\n$/);
    expect(after.slice(text.length)).toMatch(/^HTTP\/1\.1 200 OK\r\ncontent-length: 5\r\n[\s\S]*\r\n\r\nHTTP\/1\.1 204 No Content\r\n/);
    expectIdle(served);
  });

  it('answers pipelined requests one after another, in order', async () => {
    const u = await upstream(echo('one'));
    const served = await serveProxy([u.url]);
    const requests = Array.from({ length: 20 }, (_, i) => `GET /p${i} HTTP/1.1\r\nHost: x\r\n\r\n`).join('');
    const text = await raw(served.port, `${requests}GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const urls = [...text.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]);
    // The last answer says the connection closes, as its request asked.
    expect(text.slice(text.lastIndexOf('HTTP/1.1 200'))).toContain('connection: close\r\n');
    expect(urls).toEqual([...Array.from({ length: 20 }, (_, i) => `/p${i}`), '/last']);
    expect(text.match(/HTTP\/1\.1 200/g)).toHaveLength(21);
    expectIdle(served);
  });

  describe('refuses what two parsers could read differently (request smuggling), before any upstream sees it', () => {
    const cases: Array<[string, string, number, RegExp]> = [
      [
        'Content-Length with Transfer-Encoding',
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        400,
        /both Transfer-Encoding and Content-Length/,
      ],
      [
        'conflicting Content-Length fields',
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde',
        400,
        /conflicting Content-Length/,
      ],
      [
        'a Content-Length list with different values',
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcde',
        400,
        /conflicting Content-Length/,
      ],
      ['a signed Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd', 400, /is not a length/],
      [
        'Transfer-Encoding other than chunked',
        'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
        400,
        /Transfer-Encoding other than/,
      ],
      [
        'an obfuscated Transfer-Encoding',
        'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
        400,
        /malformed field name/,
      ],
      ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n', 400, /obs-fold/],
      ['a bare LF', 'GET / HTTP/1.1\nHost: x\r\n\r\n', 400, /bare LF/],
      ['an absolute-form target', 'GET http://internal.example/admin HTTP/1.1\r\nHost: x\r\n\r\n', 400, /must be a path/],
      ['an asterisk-form target', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 400, /must be a path/],
      ['an authority-form target', 'CONNECT internal.example:443 HTTP/1.1\r\nHost: x\r\n\r\n', 400, /must be a path/],
      ['a missing Host', 'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n', 400, /Host is missing/],
      ['a repeated Host', 'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n', 400, /Host is repeated/],
      ['a NUL in a field value', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n', 400, /control characters/],
      [
        'a malformed chunk size',
        'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nabcde\r\n0\r\n\r\n',
        400,
        /malformed chunk size/,
      ],
      [
        'chunk data longer than its size',
        'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcde\r\n0\r\n\r\n',
        400,
        /not followed by CRLF/,
      ],
      ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: x\r\n\r\n', 505, /send HTTP\/1\.1/],
      ['a malformed request line', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 400, /malformed request line/],
    ];
    for (const [name, request, status, message] of cases) {
      it(name, async () => {
        let received = 0;
        const u = await upstream((req, res) => {
          received++;
          req.resume();
          res.end('reached');
        });
        const served = await serveProxy([u.url]);
        const text = await raw(served.port, request);
        expect(text).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
        expect(text).toContain('"code":"ERR_BALLAST_BAD_REQUEST"');
        expect(text).toMatch(message);
        expect(text).toContain('connection: close');
        if (status === 505 || !/chunk/.test(name)) expect(received).toBe(0);
        expect(text).not.toContain('reached');
        expectIdle(served);
      });
    }
  });

  it('answers 431 to a head larger than maxHeaderBytes, without reading on', async () => {
    const u = await upstream(echo('one'));
    const served = await serveProxy([u.url], { maxHeaderBytes: 1_024, timeoutMs: 500 });
    const text = await raw(served.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4_000)}\r\n\r\n`);
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
    // An endless head with no blank line is cut off the same way once it passes the limit.
    const endless = await raw(served.port, `GET / HTTP/1.1\r\nHost: x\r\n${'X-A: 1\r\n'.repeat(300)}`);
    expect(endless).toMatch(/^HTTP\/1\.1 431 /);
    expect(u.requests).toHaveLength(0);
    expect(served.proxy.stats().refused).toBe(2);
  });

  it('cuts off a client that sends its head too slowly with 408, while serving others', async () => {
    const u = await upstream(echo('one'));
    const served = await serveProxy([u.url], { headersTimeoutMs: 300 });
    const slow = await open(served.port);
    slow.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n');
    // Others are served meanwhile.
    const res = await fetch(`${served.url}/fast`);
    expect(await res.json()).toMatchObject({ url: '/fast' });
    const text = await slow.waitFor(/\r\n\r\n\{.*\}$/);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toContain('did not arrive in time');
    await closed(slow.socket);
    expect(u.requests.map((r) => r.url)).toEqual(['/fast']);
  });

  it('cuts off an upload that stalls past requestTimeoutMs and releases the pick', async () => {
    const u = await upstream(echo('one'));
    const served = await serveProxy([u.url], { requestTimeoutMs: 300 });
    const c = await open(served.port);
    c.socket.write('POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
    await closed(c.socket);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    await expect.poll(() => u.aborted.length).toBe(1);
    expectIdle(served);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ failures: 0 });
  });

  it('answers 503 with no endpoint, 502 when unreachable (retrying elsewhere with maxAttempts) and 504 on timeout', async () => {
    const empty = await serveProxy([]);
    const none = await fetch(`${empty.url}/x`);
    expect(none.status).toBe(503);
    expect(none.headers.get('retry-after')).toBe('1');
    expect(await none.json()).toMatchObject({ error: { code: 'ERR_BALLAST_NO_ENDPOINT' } });

    const refused = await refusingUrl();
    const unreachable = await serveProxy([refused]);
    const bad = await fetch(`${unreachable.url}/x`);
    expect(bad.status).toBe(502);
    expect(await bad.json()).toMatchObject({
      error: { code: 'ERR_BALLAST_UPSTREAM', upstream: 'u0', message: expect.stringContaining('ECONNREFUSED') },
    });

    const good = await upstream(echo('good'));
    const retrying = await serveProxy([refused, good.url], { maxAttempts: 2 });
    const retried = await fetch(`${retrying.url}/x`, { method: 'POST', body: 'kept' });
    expect(await retried.json()).toMatchObject({ id: 'good', body: 'kept' });
    expect(retrying.balancer.stats().endpoints[0]).toMatchObject({ failures: 1 });

    const slow = await upstream(hang());
    const timing = await serveProxy([slow.url], { timeoutMs: 200 });
    const late = await fetch(`${timing.url}/x`);
    expect(late.status).toBe(504);
    expect(await late.json()).toMatchObject({
      error: { code: 'ERR_BALLAST_UPSTREAM', message: expect.stringContaining('did not answer in time') },
    });
    await expect.poll(() => slow.aborted.length).toBe(1);
    expectIdle(timing);
  });

  it('aborts the upstream request when the client leaves mid-response, releasing the pick as cancelled', async () => {
    let upstreamSocketClosed = false;
    const u = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first');
      res.on('close', () => (upstreamSocketClosed = true));
    });
    const served = await serveProxy([u.url]);
    const c = await open(served.port);
    c.socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.waitFor(/first/);
    c.socket.destroy();
    await expect.poll(() => upstreamSocketClosed).toBe(true);
    await expect.poll(() => served.balancer.stats().inFlight).toBe(0);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ failures: 0 });
  });

  it('sends a request again on a new connection when the upstream closed the pooled one', async () => {
    let u: Upstream | undefined;
    u = await upstream((req, res) => {
      res.end(req.url);
      // Closes the keep-alive connection right after answering, as an upstream past its idle time does.
      if (req.url === '/first') setImmediate(() => req.socket.destroy());
    });
    const served = await serveProxy([u.url]);
    expect(await (await fetch(`${served.url}/first`)).text()).toBe('/first');
    await expect.poll(() => u!.requests[0]!.socket.destroyed).toBe(true);
    expect(await (await fetch(`${served.url}/second`)).text()).toBe('/second');
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ failures: 0, successes: 2 });
  });

  it('carries a large body both ways intact, with backpressure', async () => {
    const u = await upstream(echo('one'));
    const served = await serveProxy([u.url]);
    const body = 'x'.repeat(3_000_000);
    const res = await fetch(`${served.url}/big`, { method: 'PUT', body });
    const seen = (await res.json()) as { body: string };
    expect(seen.body.length).toBe(body.length);
    expect(seen.body === body).toBe(true);
  });

  it('does not buffer for a client that stops reading: the upstream feels the backpressure', async () => {
    const source = endless();
    const u = await upstream(source.handler);
    const served = await serveProxy([u.url]);
    const c = await open(served.port);
    c.socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.waitFor(/^HTTP\/1\.1 200/);
    c.socket.pause();
    await expect.poll(() => source.stats().blocked).toBe(true);
    const stalledAt = source.stats().written;
    // Give the proxy every chance to keep reading; it must not: the upstream stays blocked.
    await new Promise((resolve) => setImmediate(resolve));
    expect(source.stats().written).toBe(stalledAt);
    expect(source.stats().written).toBeLessThan(64 * 1024 * 1024);
    c.socket.destroy();
    await expect.poll(() => u.aborted.length).toBe(1);
    await expect.poll(() => served.balancer.stats().inFlight).toBe(0);
    expect(served.balancer.stats().endpoints[0]).toMatchObject({ cancelled: 1, failures: 0 });
  });

  it('holds one head of pipelined bytes at most while an exchange runs, then stops reading', async () => {
    const u = await upstream(hang());
    const served = await serveProxy([u.url], { maxHeaderBytes: 1_024, timeoutMs: 500 });
    const c = await open(served.port);
    c.socket.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
    await expect.poll(() => u.requests.length).toBe(1);
    // A flood of pipelined requests behind one that is not answered yet: the proxy stops reading
    // (the client's writes back up) instead of keeping them all.
    const flood = Buffer.from('GET /more HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(200_000));
    c.socket.write(flood);
    await expect.poll(() => c.socket.writableLength).toBeGreaterThan(1_000_000);
    expect(u.requests).toHaveLength(1);
  });

  it('answers Expect: 100-continue itself and forwards the body', async () => {
    const u = await upstream(echo('one'));
    const served = await serveProxy([u.url]);
    const c = await open(served.port);
    c.socket.write('POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    await c.waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
    c.socket.write('hello');
    const text = await c.waitFor(/"body":"hello"/);
    expect(text).not.toContain('"expect"');
  });

  it('closes idle connections on close(), the others after their exchange', async () => {
    const u = await upstream(echo('one'));
    const served = await serveProxy([u.url]);
    const idle = await open(served.port);
    await expect.poll(() => served.proxy.stats().clients).toBe(1);
    expect(await (await fetch(`${served.url}/x`, { headers: { connection: 'close' } })).json()).toMatchObject({ url: '/x' });
    const upstreamSocket = u.requests[0]!.socket;
    await served.proxy.close();
    await closed(idle.socket);
    await expect.poll(() => upstreamSocket.destroyed).toBe(true);
    expect(served.proxy.stats()).toMatchObject({ clients: 0, idleUpstreams: 0 });
    await served.proxy[Symbol.asyncDispose]();
  });

  it('validates its options, naming the one that is wrong', () => {
    const balancer = new LoadBalancer({ endpoints: [{ id: 'u', address: 'http://127.0.0.1:1' }] });
    defer(() => balancer.close());
    expect(() => netProxy({} as never)).toThrow('balancer must be a LoadBalancer, got undefined');
    expect(() => netProxy({ balancer, key: 'ip' as never })).toThrow(/^key must be a function/);
    expect(() => netProxy({ balancer, maxAttempts: 0 })).toThrow(/^maxAttempts must be an integer >= 1/);
    expect(() => netProxy({ balancer, timeoutMs: 0 })).toThrow(/^timeoutMs must be/);
    expect(() => netProxy({ balancer, maxHeaderBytes: 10 })).toThrow(/^maxHeaderBytes must be an integer between 256 and/);
    expect(() => netProxy({ balancer, loadHeader: '' })).toThrow(/^loadHeader must be a non-empty string/);
    expect(() => netProxy({ balancer, trustedProxies: ['10.0.0.0/40'] })).toThrow(/^trustedProxies\[0\] must be/);
  });
});
