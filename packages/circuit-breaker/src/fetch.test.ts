import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { BreakerRegistry, circuitBreakerFetch, isBrokenCircuitError, isTimeoutError } from './index.ts';

/** A real HTTP server on loopback whose answer per path is set by the test. */
let server: Server;
let base: string;
let hits = 0;
const hanging = new Set<ServerResponse>();
/** Answers whose headers and first bytes are sent, each ended by the test. */
const halfSent: ServerResponse[] = [];
const arrivals: Array<() => void> = [];

/** Resolves once the server holds `count` requests it never answers. */
async function hangingRequests(count: number): Promise<void> {
  while (hanging.size < count) await new Promise<void>((resolve) => arrivals.push(resolve));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    hits++;
    const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? 200);
    if (status === 1) {
      // headers now, the rest of the body when the test ends it
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first ');
      halfSent.push(res);
      return;
    }
    if (status === 0) {
      hanging.add(res);
      for (const arrived of arrivals.splice(0)) arrived();
      return; // never answers
    }
    res.writeHead(status, { 'content-type': 'text/plain' }).end(`status ${status}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of [...hanging, ...halfSent]) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

afterEach(() => {
  vi.useRealTimers();
});

/**
 * Fake time for the breaker's timers and clock only; sockets stay real. A timeout fires
 * when the test advances the clock past it, never because the machine was slow.
 */
function fakeBreakerTime(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
}

describe('circuitBreakerFetch', () => {
  it('returns 5xx responses, counts them, and opens the origin circuit', async () => {
    const protectedFetch = circuitBreakerFetch({ registry: { breaker: { volumeThreshold: 3, resetTimeout: 60_000 } } });
    for (let i = 0; i < 3; i++) {
      const res = await protectedFetch(`${base}/?status=503`);
      expect(res.status).toBe(503);
      expect(await res.text()).toBe('status 503');
    }
    const breaker = protectedFetch.registry.peek(base);
    expect(breaker?.state).toBe('open');
    expect(breaker?.stats().calls.result).toBe(3);
    const before = hits;
    const error = await protectedFetch(`${base}/?status=200`).catch((e: unknown) => e);
    expect(isBrokenCircuitError(error)).toBe(true);
    expect((error as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(59_000);
    expect(hits).toBe(before); // the request never left
    protectedFetch.registry.close();
  });

  it('counts 429 as a failure and 404 as a success by default', async () => {
    const protectedFetch = circuitBreakerFetch();
    await protectedFetch(`${base}/?status=429`);
    await protectedFetch(new Request(`${base}/?status=404`));
    expect(protectedFetch.registry.peek(base)?.stats().calls).toMatchObject({ result: 1, success: 1 });
    protectedFetch.registry.close();
  });

  it('keys breakers by origin, so one failing origin does not block another', async () => {
    const registry = new BreakerRegistry({ breaker: { volumeThreshold: 1 } });
    const protectedFetch = circuitBreakerFetch({ registry });
    await protectedFetch(`${base}/?status=500`);
    const other = base.replace('127.0.0.1', 'localhost');
    expect(registry.peek(base)?.state).toBe('open');
    const res = await protectedFetch(`${other}/?status=200`);
    expect(res.status).toBe(200);
    expect(registry.size).toBe(2);
    registry.close();
  });

  it('times out a hanging request on its own signal and counts it', async () => {
    fakeBreakerTime();
    const protectedFetch = circuitBreakerFetch({ registry: { breaker: { timeout: 50 } } });
    const before = hanging.size;
    const slow = protectedFetch(`${base}/?status=0`).catch((error: unknown) => error);
    const fast = await protectedFetch(`${base}/?status=200`); // however long the machine takes: no time passes
    expect(fast.status).toBe(200);
    await hangingRequests(before + 1);
    await vi.advanceTimersByTimeAsync(49);
    expect(protectedFetch.registry.peek(base)?.stats().calls).toMatchObject({ timeout: 0, success: 1 });
    await vi.advanceTimersByTimeAsync(1);
    expect(isTimeoutError(await slow)).toBe(true);
    expect(protectedFetch.registry.peek(base)?.stats().calls).toMatchObject({ timeout: 1, success: 1 });
    protectedFetch.registry.close();
  });

  it('times out the wait for headers only: the body can take longer', async () => {
    fakeBreakerTime();
    const protectedFetch = circuitBreakerFetch({ registry: { breaker: { timeout: 50 } } });
    const res = await protectedFetch(`${base}/?status=1`);
    await vi.advanceTimersByTimeAsync(1000); // far past the timeout, body still coming
    halfSent.shift()?.end('second');
    expect(await res.text()).toBe('first second');
    expect(protectedFetch.registry.peek(base)?.stats().calls).toMatchObject({ success: 1, timeout: 0 });
    protectedFetch.registry.close();
  });

  it("honours the caller's signal without counting a failure", async () => {
    const protectedFetch = circuitBreakerFetch();
    const controller = new AbortController();
    const before = hanging.size;
    const pending = protectedFetch(`${base}/?status=0`, { signal: controller.signal });
    await hangingRequests(before + 1); // in flight at the server, which will never answer
    controller.abort(new Error('user left'));
    await expect(pending).rejects.toThrow('user left');
    expect(protectedFetch.registry.peek(base)?.stats().calls).toMatchObject({ ignored: 1, error: 0 });
    protectedFetch.registry.close();
  });

  it('accepts a custom key and classifier', async () => {
    const protectedFetch = circuitBreakerFetch({ key: (url) => url.pathname, isFailure: (r) => r.status === 404 });
    await protectedFetch(`${base}/a?status=404`);
    expect(protectedFetch.registry.peek('/a')?.stats().calls.result).toBe(1);
    protectedFetch.registry.close();
  });
});
