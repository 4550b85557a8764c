import { InProcessQueue } from '@ballast/app-queue';
import { parseServerTiming, silentLogger } from '@ballast/app-shared';
import { ResizeWorker } from '@ballast/app-worker';
import sharp from 'sharp';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createApi } from './index.ts';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const metric = (text: string, name: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
};

describe('API observability', () => {
  it("answers with its stages in Server-Timing (admission, enqueue, the worker's queue wait and conversion, api) and names the tenant", async () => {
    const queue = new InProcessQueue();
    open.push(queue);
    open.push(new ResizeWorker({ queue, concurrency: 1 }).start());
    const api = createApi({
      queue,
      logger: silentLogger(),
      authenticate: async (c, next) => {
        c.set('tenant', 't-42');
        await next();
      },
    });
    open.push(api);
    const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: 'white' } })
      .jpeg()
      .toBuffer();
    const res = await api.app.request('/v1/resize?width=32', { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg' } });
    expect(res.status).toBe(200);
    const timing = parseServerTiming(res.headers.get('server-timing'));
    expect(Object.keys(timing).sort()).toEqual(['admission', 'api', 'conversion', 'enqueue', 'queue_wait']);
    expect(timing.conversion).toBe(Number(res.headers.get('x-wall-ms')));
    expect(timing.api).toBeGreaterThanOrEqual((timing.admission ?? 0) + (timing.enqueue ?? 0));
    expect(res.headers.get('x-ballast-tenant')).toBe('t-42');
    // A request refused before admission has only the API's total.
    const bad = await api.app.request('/v1/resize?width=0', { method: 'POST', body: jpeg });
    expect(bad.status).toBe(400);
    expect(Object.keys(parseServerTiming(bad.headers.get('server-timing')))).toEqual(['api']);
  });

  it('exports whether the queue is reachable and the age of its oldest waiting job', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const queue = new InProcessQueue();
      open.push(queue);
      const api = createApi({ queue, logger: silentLogger() });
      open.push(api);
      await queue.enqueue({ data: Buffer.from('x'), params: {}, deadlineAt: Date.now() + 600_000 });
      vi.setSystemTime(Date.now() + 42_000);
      let text = await api.registry.metrics();
      expect(metric(text, 'ballast_api_queue_up')).toBe(1);
      expect(metric(text, 'ballast_api_queue_oldest_job_age_seconds')).toBe(42);
      await queue.close();
      text = await api.registry.metrics();
      expect(metric(text, 'ballast_api_queue_up')).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
