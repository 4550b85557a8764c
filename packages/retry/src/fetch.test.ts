import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { constantBackoff } from './backoff.ts';
import { ratioBudget } from './budget.ts';
import { isConnectionError } from './classify.ts';
import { isRetryBudgetExhaustedError } from './errors.ts';
import { retryingFetch } from './fetch.ts';
import { hedge, RetryPolicy } from './policy.ts';
import { refusedPort } from './testing/settle.ts';

// A real HTTP server on loopback; each test scripts its answers by path.
type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
let server: Server;
let base: string;
const handlers = new Map<string, Handler>();
const seen: Array<{ method: string; url: string; body: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      (handlers.get(req.url ?? '') ?? ((_, r) => r.writeHead(404).end()))(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  handlers.clear();
  seen.length = 0;
});

/** Answers the statuses in order, then 200 with `ok`. */
function script(path: string, statuses: number[], headers: Record<string, string> = {}): void {
  const queue = [...statuses];
  handlers.set(path, (_req, res) => {
    const status = queue.shift();
    if (status === undefined) res.writeHead(200).end('ok');
    else res.writeHead(status, headers).end(`status ${status}`);
  });
}

const fast = { backoff: constantBackoff({ delayMs: 1 }) };

describe('retryingFetch', () => {
  it('retries a GET on 503 and returns the success', async () => {
    script('/a', [503, 502]);
    const f = retryingFetch(fast);
    const res = await f(`${base}/a`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(seen.map((s) => s.url)).toEqual(['/a', '/a', '/a']);
    expect(f.policy.stats()).toMatchObject({ attempts: 3, retries: 2, successes: 1 });
  });

  it('honours Retry-After: 0 and returns the last 503 when attempts run out', async () => {
    script('/b', [503, 503, 503, 503], { 'retry-after': '0' });
    const res = await retryingFetch({ ...fast, maxAttempts: 2 })(`${base}/b`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('status 503');
    expect(seen).toHaveLength(2);
  });

  it('does not retry a POST that reached the server', async () => {
    script('/c', [503]);
    const res = await retryingFetch(fast)(`${base}/c`, { method: 'POST', body: 'payload' });
    expect(res.status).toBe(503);
    expect(seen).toHaveLength(1);
  });

  it('retries a POST carrying an idempotency key, replaying its body', async () => {
    script('/d', [503]);
    const res = await retryingFetch(fast)(`${base}/d`, { method: 'POST', body: 'payload', headers: { 'Idempotency-Key': 'k1' } });
    expect(res.status).toBe(200);
    expect(seen.map((s) => s.body)).toEqual(['payload', 'payload']);
  });

  it('replays the body of a Request object', async () => {
    script('/e', [500]);
    const res = await retryingFetch(fast)(new Request(`${base}/e`, { method: 'PUT', body: 'put-body' }));
    expect(res.status).toBe(200);
    expect(seen.map((s) => `${s.method} ${s.body}`)).toEqual(['PUT put-body', 'PUT put-body']);
  });

  it('sends a streamed body once', async () => {
    script('/f', [503]);
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed'));
        controller.close();
      },
    });
    const res = await retryingFetch(fast)(`${base}/f`, { method: 'PUT', body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(503);
    expect(seen).toHaveLength(1);
  });

  it('retries any method when the connection was refused, since nothing was sent', async () => {
    const port = await refusedPort();
    const f = retryingFetch({ ...fast, maxAttempts: 3 });
    await expect(f(`http://127.0.0.1:${port}/x`, { method: 'POST', body: 'x' })).rejects.toThrow('fetch failed');
    expect(f.policy.stats().attempts).toBe(3);
  });

  it('never retries once the body has started streaming to the caller', async () => {
    handlers.set('/g', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial ');
      setTimeout(() => res.destroy(), 20);
    });
    const f = retryingFetch(fast);
    const res = await f(`${base}/g`);
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    expect(seen).toHaveLength(1);
    expect(f.policy.stats().attempts).toBe(1);
  });

  it('lets the caller cancel the body after the response is returned', async () => {
    handlers.set('/h', (_req, res) => {
      res.writeHead(200);
      res.write('start ');
    });
    const controller = new AbortController();
    const res = await retryingFetch(fast)(`${base}/h`, { signal: controller.signal });
    const reading = res.text();
    controller.abort(new Error('caller gave up'));
    await expect(reading).rejects.toThrow();
  });

  it('stops waiting for a Retry-After when the caller aborts, and sends nothing more', async () => {
    script('/wait', [503], { 'retry-after': '10' });
    const controller = new AbortController();
    const f = retryingFetch(fast);
    f.policy.on('retry', ({ delayMs }) => {
      expect(delayMs).toBe(10_000);
      queueMicrotask(() => controller.abort(new Error('client left')));
    });
    // The 10 s wait runs on fake timers that never advance: the call settles only if the abort ends the wait.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      await expect(f(`${base}/wait`, { signal: controller.signal })).rejects.toThrow('client left');
    } finally {
      vi.useRealTimers();
    }
    expect(seen).toHaveLength(1);
    expect(f.policy.stats()).toMatchObject({ inFlight: 0, retries: 1, giveUps: 1 });
    f.policy.close();
  });

  it('aborts a slow attempt with timeoutMs and retries it', async () => {
    let n = 0;
    handlers.set('/i', (_req, res) => {
      if (++n === 1) return; // never answers
      res.writeHead(200).end('second');
    });
    const res = await retryingFetch({ ...fast, timeoutMs: 100 })(`${base}/i`);
    expect(await res.text()).toBe('second');
    expect(seen).toHaveLength(2);
  });

  it('ends with RetryBudgetExhaustedError when a shared budget is spent', async () => {
    const port = await refusedPort();
    const budget = ratioBudget({ ratio: 0.1, minRetriesPerSec: 0 });
    const f = retryingFetch({ ...fast, budget });
    const error = await f(`http://127.0.0.1:${port}/`).catch((e: unknown) => e);
    expect(isRetryBudgetExhaustedError(error)).toBe(true);
    expect((error as Error).cause).toBeInstanceOf(TypeError);
  });

  it('returns the last response, headers and unread body intact, when the budget refuses to retry it', async () => {
    script('/spent', [503, 503, 503], { 'retry-after': '0' });
    const budget = ratioBudget({ ratio: 0.1, minRetriesPerSec: 0 });
    const f = retryingFetch({ ...fast, maxAttempts: 3, budget });
    const events: string[] = [];
    f.policy.on('budgetExhausted', ({ kind }) => events.push(`budgetExhausted:${kind}`));
    f.policy.on('giveUp', ({ reason }) => events.push(`giveUp:${reason}`));
    const res = await f(`${base}/spent`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('0');
    expect(res.bodyUsed).toBe(false);
    expect(await res.text()).toBe('status 503');
    expect(seen).toHaveLength(1);
    expect(events).toEqual(['budgetExhausted:retry', 'giveUp:budget']);
    expect(f.policy.stats()).toMatchObject({ budgetExhausted: 1, giveUps: 1, retries: 0 });
  });

  it('gateway pattern: a request that never reached one upstream goes to another, under a shared budget', async () => {
    script('/j', []);
    const dead = `http://127.0.0.1:${await refusedPort()}`;
    const upstreams = [dead, base];
    const policy = new RetryPolicy<Response>({
      maxAttempts: 2,
      backoff: constantBackoff({ delayMs: 0 }),
      budget: ratioBudget(),
      retryOn: (o) => !o.ok && isConnectionError(o.error),
    });
    const res = await policy.execute(({ attempt, signal }) =>
      fetch(`${upstreams[attempt - 1]}/j`, { method: 'POST', body: 'once', signal }),
    );
    expect(res.status).toBe(200);
    expect(seen.map((s) => s.body)).toEqual(['once']);
    expect(policy.stats()).toMatchObject({ attempts: 2, retries: 1 });
    policy.close();
  });

  it('hedged fetch: the winner streams its whole body while the loser is aborted', async () => {
    let loserClosed = false;
    handlers.set('/slow', (req, res) => {
      req.socket.once('close', () => {
        loserClosed = true;
      });
      setTimeout(() => res.writeHead(200).end('slow'), 2_000).unref();
    });
    handlers.set('/fast', (_req, res) => {
      res.writeHead(200);
      res.write('fast ');
      // The rest of the body arrives after the hedge has already settled.
      setTimeout(() => res.end('body'), 50);
    });
    const res = await hedge(({ attempt, signal }) => fetch(`${base}/${attempt === 1 ? 'slow' : 'fast'}`, { signal }), {
      hedgeDelayMs: 30,
      maxAttempts: 2,
    });
    expect(await res.text()).toBe('fast body');
    await expect.poll(() => loserClosed).toBe(true);
  });

  it('rejects bad options by name', () => {
    expect(() => retryingFetch({ fetch: 'fetch' as never })).toThrowError(expect.objectContaining({ option: 'fetch' }));
    expect(() => retryingFetch({ idempotentMethods: ['GET', ''] })).toThrowError(
      expect.objectContaining({ option: 'idempotentMethods[1]' }),
    );
    expect(() => retryingFetch({ maxAttempts: 0 })).toThrowError(expect.objectContaining({ option: 'maxAttempts' }));
  });
});
