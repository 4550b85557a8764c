import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BrownoutController } from './brownout.ts';
import { brownout } from './hono.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('brownout middleware', () => {
  it('puts the controller on the context and records each answer’s latency, not client errors', async () => {
    const dimmer = new BrownoutController({ autoUpdate: false, initialLevel: 0.5, random: () => 0.1, setpointMs: 100 });
    const app = new Hono();
    app.use('*', brownout({ controller: dimmer, header: 'x-brownout-level' }));
    app.get('/page', async (c) => {
      const optional = c.get('dimmer').shouldServeOptional();
      await vi.advanceTimersByTimeAsync(30);
      return c.json({ level: c.var.dimmer.level, optional });
    });
    app.get('/bad', (c) => c.json({ error: 'no' }, 400));
    app.onError((_, c) => c.json({ error: 'internal' }, 500));
    app.get('/fail', () => {
      throw new Error('boom');
    });
    const res = await app.request('/page');
    expect(await res.json()).toEqual({ level: 0.5, optional: true });
    expect(res.headers.get('x-brownout-level')).toBe('0.500');
    expect((await app.request('/bad')).status).toBe(400);
    expect((await app.request('/fail')).status).toBe(500);
    const samples: number[] = [];
    dimmer.on('update', ({ samples: n, measuredMs }) => samples.push(n, measuredMs));
    dimmer.update();
    // /page (30 ms) and /fail (an answer of the service's own) count; /bad does not.
    expect(samples[0]).toBe(2);
    expect(samples[1]).toBeCloseTo(30, 0);
  });

  it('records nothing with record: false, or what the predicate picks', async () => {
    const dimmer = new BrownoutController({ autoUpdate: false });
    const app = new Hono();
    app.use('/quiet/*', brownout({ controller: dimmer, record: false }));
    app.use('/picky/*', brownout({ controller: dimmer, record: (c) => c.req.path.endsWith('/yes') }));
    app.get('*', (c) => c.text('ok'));
    await app.request('/quiet/a');
    await app.request('/picky/no');
    await app.request('/picky/yes');
    expect(dimmer.stats().pendingSamples).toBe(1);
    expect((await app.request('/quiet/a')).headers.get('x-brownout-level')).toBeNull();
  });
});
