import { request as httpRequest } from 'node:http';
import { Hono } from 'hono';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BodyBudget, type BodyLimits, readBody, resolveBodyLimits } from './body.ts';
import { memoryLogger } from './log.ts';
import type { AppEnv } from './middleware.ts';
import { errorHandler, requestContext } from './middleware.ts';
import { type Listening, listen } from './serve.ts';

const open: Listening[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const server of open.splice(0)) await server.close(0);
});

/** An app that reads the body under `limits` (and `budget`) and answers its size. */
function bodyApp(limits: BodyLimits, budget?: BodyBudget, hold?: Promise<void>) {
  const resolved = resolveBodyLimits(limits);
  const app = new Hono<AppEnv>();
  app.use(requestContext(memoryLogger().logger));
  app.onError(errorHandler());
  app.post('/', async (c) => {
    const lease = budget?.lease();
    try {
      const body = await readBody(c, resolved, lease);
      await hold;
      return c.json({ bytes: body.byteLength });
    } finally {
      lease?.release();
    }
  });
  return app;
}

async function serveApp(app: Hono<AppEnv>): Promise<Listening> {
  const server = await listen(app.fetch);
  open.push(server);
  return server;
}

/** Sends headers, then `chunks` (each after the previous is written), leaving the request unfinished unless `end`. */
function upload(server: Listening, headers: Record<string, string>, chunks: Buffer[], end: boolean) {
  const req = httpRequest(`${server.url}/`, { method: 'POST', headers });
  const answer = new Promise<{ status: number; body: string; connection: string | undefined; closed: Promise<void> }>((resolve, reject) => {
    req.once('response', (res) => {
      let body = '';
      res.on('data', (c) => {
        body += String(c);
      });
      const closed = new Promise<void>((r) => req.socket?.once('close', () => r()) ?? r());
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection, closed }));
    });
    req.once('error', reject);
  });
  req.flushHeaders();
  for (const chunk of chunks) req.write(chunk);
  if (end) req.end();
  return { req, answer };
}

describe('readBody', () => {
  it('refuses a declared length over the limit before reading a byte', async () => {
    const server = await serveApp(bodyApp({ maxBodyBytes: 1000 }));
    const { req, answer } = upload(server, { 'content-length': '5000' }, [], false); // nothing sent
    const res = await answer;
    expect([res.status, JSON.parse(res.body).error.code]).toEqual([413, 'ERR_BALLAST_BODY_TOO_LARGE']);
    req.destroy();
  });

  it('refuses a chunked body as soon as it crosses the limit', async () => {
    const server = await serveApp(bodyApp({ maxBodyBytes: 1000 }));
    const { req, answer } = upload(server, { 'transfer-encoding': 'chunked' }, [Buffer.alloc(600), Buffer.alloc(600)], false);
    expect((await answer).status).toBe(413);
    req.destroy();
  });

  it('refuses bodies with 503 once the budget is spent, and takes them again once it is given back', async () => {
    const budget = new BodyBudget(1500);
    let release: () => void = () => {};
    const hold = new Promise<void>((r) => {
      release = r;
    });
    const server = await serveApp(bodyApp({ maxBodyBytes: 1000 }, budget, hold));
    const first = upload(server, { 'content-length': '1000' }, [Buffer.alloc(1000)], true);
    while (budget.stats().usedBytes < 1000) await new Promise((r) => setImmediate(r));
    const second = upload(server, { 'content-length': '1000' }, [Buffer.alloc(1000)], true);
    const refused = await second.answer;
    expect([refused.status, JSON.parse(refused.body).error.code]).toEqual([503, 'ERR_BALLAST_BODY_BUDGET']);
    // Chunked bodies count as they arrive.
    const chunked = upload(server, { 'transfer-encoding': 'chunked' }, [Buffer.alloc(400), Buffer.alloc(400)], true);
    expect((await chunked.answer).status).toBe(503);
    release();
    expect((await first.answer).status).toBe(200);
    expect(budget.stats()).toEqual({ usedBytes: 0, maxBytes: 1500, maxBytesPerClient: 1500, clients: 0, refused: 2 });
    const third = upload(server, { 'content-length': '1000' }, [Buffer.alloc(1000)], true);
    expect((await third.answer).status).toBe(200);
  });

  it('answers 408 and closes the connection when the body arrives too slowly', async () => {
    const server = await serveApp(bodyApp({ maxBodyBytes: 1_000_000, minBodyBytesPerSec: 10_000, bodyGraceMs: 200 }));
    const { answer } = upload(server, { 'content-length': '100000' }, [Buffer.alloc(100)], false); // then nothing
    const res = await answer;
    expect([res.status, JSON.parse(res.body).error.code, res.connection]).toEqual([408, 'ERR_BALLAST_BODY_TIMEOUT', 'close']);
    await res.closed;
  });

  it('times out a body that never ends, on fake time', async () => {
    vi.useFakeTimers();
    const app = bodyApp({ maxBodyBytes: 1_000_000, bodyTimeoutMs: 5000, minBodyBytesPerSec: 0 });
    const endless = new ReadableStream({ pull: () => new Promise<void>(() => {}) });
    const pending = Promise.resolve(app.request('/', { method: 'POST', body: endless, duplex: 'half' } as RequestInit));
    await vi.advanceTimersByTimeAsync(4999);
    let settled = false;
    pending.then(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const res = await pending;
    expect(res.status).toBe(408);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('holds one client to its share, leaving the rest to the others', () => {
    const budget = new BodyBudget(1000, 300);
    const greedy = [budget.lease('10.0.0.66'), budget.lease('10.0.0.66')];
    expect(greedy[0]?.take(200)).toBe(true);
    expect(greedy[1]?.take(200)).toBe(false); // its share is 300
    const other = budget.lease('10.0.0.7');
    expect(other.take(300)).toBe(true);
    expect(budget.stats()).toMatchObject({ usedBytes: 500, clients: 2, refused: 1 });
    for (const l of greedy) l.release();
    other.release();
    other.release();
    expect(budget.stats()).toMatchObject({ usedBytes: 0, clients: 0 });
  });

  it('refuses bad limits by name', () => {
    expect(() => resolveBodyLimits({ maxBodyBytes: 0 })).toThrow(/maxBodyBytes/);
    expect(() => resolveBodyLimits({ minBodyBytesPerSec: -1 })).toThrow(/minBodyBytesPerSec/);
    expect(() => new BodyBudget(1.5)).toThrow(/bodyBudgetBytes/);
    expect(() => new BodyBudget(10, 0)).toThrow(/bodyBudgetPerClientBytes/);
  });
});
