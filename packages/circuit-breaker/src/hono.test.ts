import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { circuitBreaker } from './hono.ts';
import { BreakerRegistry } from './index.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function appWith(registry: BreakerRegistry, status: { value: number }, extra: Parameters<typeof circuitBreaker>[0] = {}) {
  const app = new Hono();
  app.use('/upstream/:name', circuitBreaker({ registry, key: (c) => c.req.param('name') ?? 'none', ...extra }));
  app.get('/upstream/:name', (c) => {
    if (status.value === 0) throw new Error('handler crashed');
    return c.text(`answer ${status.value}`, status.value as 200);
  });
  return app;
}

describe('circuitBreaker middleware', () => {
  it('passes responses through while closed', async () => {
    const registry = new BreakerRegistry();
    const app = appWith(registry, { value: 200 });
    const res = await app.request('/upstream/a');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('answer 200');
    expect(registry.peek('a')?.stats().calls.success).toBe(1);
    registry.close();
  });

  it('opens on 5xx responses and thrown errors, then answers 503 with Retry-After', async () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const registry = new BreakerRegistry({ breaker: { volumeThreshold: 2, resetTimeout: 10_000 } });
    const status = { value: 502 };
    const app = appWith(registry, status);
    expect((await app.request('/upstream/a')).status).toBe(502);
    status.value = 0;
    expect((await app.request('/upstream/a')).status).toBe(500);
    expect(registry.peek('a')?.state).toBe('open');
    expect(logged).toHaveBeenCalled(); // Hono's error handler saw the crash
    await vi.advanceTimersByTimeAsync(2_500);
    status.value = 200;
    const res = await app.request('/upstream/a');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('8');
    expect(await res.json()).toEqual({ error: { code: 'ERR_BALLAST_CIRCUIT_OPEN', message: 'circuit "a" is open' } });
    // another key is unaffected
    expect((await app.request('/upstream/b')).status).toBe(200);
    registry.close();
  });

  it('answers 503 with Retry-After while half-open with every trial taken', async () => {
    const registry = new BreakerRegistry({ breaker: { volumeThreshold: 1, resetTimeout: 1_000, halfOpenMaxCalls: 1, timeout: 3_000 } });
    const app = new Hono();
    let release: (() => void) | undefined;
    let status = 500;
    app.use('/x', circuitBreaker({ registry }));
    app.get('/x', async (c) => {
      if (status === 200) await new Promise<void>((resolve) => (release = resolve));
      return c.text('x', status as 200);
    });
    expect((await app.request('/x')).status).toBe(500);
    await vi.advanceTimersByTimeAsync(1_000);
    status = 200;
    const trial = app.request('/x');
    await vi.advanceTimersByTimeAsync(0);
    const refused = await app.request('/x');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('3'); // at most the trial's timeout
    release?.();
    expect((await trial).status).toBe(200);
    expect(registry.peek('/x')?.state).toBe('closed');
    registry.close();
  });

  it('a client that goes away cancels the call without counting it', async () => {
    const registry = new BreakerRegistry({ breaker: { volumeThreshold: 1 } });
    const app = new Hono();
    app.use('/hang', circuitBreaker({ registry }));
    app.get('/hang', () => new Promise<Response>(() => undefined));
    app.onError((error, c) => c.text(String((error as Error).message), 499 as 500));
    const controller = new AbortController();
    const pending = app.request('/hang', { signal: controller.signal });
    await vi.advanceTimersByTimeAsync(0);
    controller.abort(new Error('client gone'));
    expect((await pending).status).toBe(499);
    expect(registry.peek('/hang')?.stats().calls).toMatchObject({ ignored: 1, error: 0, timeout: 0 });
    expect(registry.peek('/hang')?.state).toBe('closed');
    registry.close();
  });

  it('answers 504 when the protected handler times out', async () => {
    const registry = new BreakerRegistry({ breaker: { timeout: 100 } });
    const app = new Hono();
    app.use('/slow', circuitBreaker({ registry }));
    app.get('/slow', () => new Promise<Response>(() => undefined));
    const pending = app.request('/slow');
    await vi.advanceTimersByTimeAsync(100);
    const res = await pending;
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ error: { code: 'ERR_BALLAST_TIMEOUT', message: 'timed out after 100 ms' } });
    expect(registry.peek('/slow')?.stats().calls.timeout).toBe(1);
    registry.close();
  });

  it('lets onRejected shape the refusal and isFailure decide what counts', async () => {
    const registry = new BreakerRegistry({ breaker: { volumeThreshold: 1 } });
    const app = appWith(
      registry,
      { value: 404 },
      {
        isFailure: (res) => res.status === 404,
        onRejected: (c, error) => c.json({ error: error.code }, 503),
      },
    );
    expect((await app.request('/upstream/x')).status).toBe(404);
    const res = await app.request('/upstream/x');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: 'ERR_BALLAST_CIRCUIT_OPEN' });
    registry.close();
  });

  it('keys by the route pattern by default and exposes its registry', async () => {
    const app = new Hono();
    const middleware = circuitBreaker();
    app.get('/items/:id', middleware, (c) => c.text('ok'));
    await app.request('/items/1');
    await app.request('/items/2');
    expect([...middleware.registry].map(([key]) => key)).toEqual(['/items/:id']);
    middleware.registry.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
