import { InProcessQueue } from '@ballast/app-queue';
import { HttpError, memoryLogger, silentLogger } from '@ballast/app-shared';
import { ResizeWorker } from '@ballast/app-worker';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ApiOptions, type ApiUsage, createApi } from './index.ts';

let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 200, height: 100, channels: 3, background: { r: 10, g: 120, b: 200 } } })
    .jpeg()
    .toBuffer();
});

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const o of open.splice(0).reverse()) await o.close();
});

/** An authentication middleware that lets everyone in as `tenant`. */
const tenantIs =
  (tenant: string): NonNullable<ApiOptions['authenticate']> =>
  async (c, next) => {
    c.set('tenant', tenant);
    await next();
  };

function setup(options: Partial<ApiOptions> = {}, { worker = true, maxDepth = 100 } = {}) {
  const queue = new InProcessQueue({ maxDepth });
  open.push(queue);
  if (worker) open.push(new ResizeWorker({ queue, concurrency: 1 }).start());
  const api = createApi({ queue, logger: silentLogger(), ...options });
  open.push(api);
  const post = (
    query: string,
    body: ConstructorParameters<typeof Response>[0] = jpeg,
    headers: Record<string, string> = { 'content-type': 'image/jpeg' },
  ) => api.app.request(`/v1/resize?${query}`, { method: 'POST', body, headers, duplex: 'half' } as RequestInit);
  return { queue, api, post };
}

describe('POST /v1/resize', () => {
  it('resizes synchronously and returns the image with its costs', async () => {
    const usage: ApiUsage[] = [];
    const { post } = setup({ onUsage: (u) => usage.push(u), authenticate: tenantIs('acme') });
    const res = await post('width=50&format=webp', jpeg, { 'content-type': 'image/jpeg', 'x-request-id': 'req-1' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    expect(res.headers.get('x-request-id')).toBe('req-1');
    expect(res.headers.get('x-job-id')).toMatch(/^[\w-]{8,}$/);
    for (const header of ['x-cpu-ms', 'x-wall-ms', 'x-queued-ms']) expect(res.headers.get(header)).toMatch(/^\d+\.\d\d$/);
    expect(res.headers.get('x-worker')).toMatch(/^worker-/);
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 50, 25]);
    expect(usage).toMatchObject([
      { requestId: 'req-1', tenant: 'acme', mode: 'sync', status: 200, bytesIn: jpeg.length, jobId: res.headers.get('x-job-id') },
    ]);
    expect(usage[0]?.bytesOut).toBeGreaterThan(0);
    expect(usage[0]?.cpuMs).toBeGreaterThan(0);
  });

  it('answers 202 in async mode, and the result later', async () => {
    const { post, api, queue } = setup({}, { worker: false });
    const res = await post('width=20&mode=async');
    expect(res.status).toBe(202);
    const location = res.headers.get('location') as string;
    const id = res.headers.get('x-job-id') as string;
    expect(location).toBe(`/v1/jobs/${id}`);
    expect(await res.json()).toEqual({ id, status: 'pending', result: location });
    const pending = await api.app.request(location);
    expect([pending.status, pending.headers.get('retry-after')]).toEqual([202, '1']);
    open.push(new ResizeWorker({ queue, concurrency: 1 }).start());
    await queue.wait(id);
    const got = await api.app.request(location);
    expect(got.status).toBe(200);
    expect((await sharp(Buffer.from(await got.arrayBuffer())).metadata()).width).toBe(20);
    expect((await api.app.request('/v1/jobs/nope')).status).toBe(404);
  });

  it.each([
    ['width=0', 'width'],
    ['width=abc', 'width'],
    ['width=9000', 'width'],
    ['height=1.5', 'height'],
    ['fit=squash', 'fit'],
    ['format=gif', 'format'],
    ['quality=101', 'quality'],
    ['format=avif&effort=9', 'effort'],
    ['animated=maybe', 'animated'],
    ['colour=red', 'colour'],
    ['mode=later', 'mode'],
    ['deadlineMs=0', 'deadlineMs'],
    ['deadlineMs=999999', 'deadlineMs'],
    ['width=10&width=20', 'width'],
    ['effort=3', 'effort'],
  ])('refuses %s with 400 naming %s', async (query, name) => {
    const { post, queue } = setup({}, { worker: false });
    const res = await post(query);
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('ERR_BALLAST_INVALID_OPTION');
    expect(body.error.message).toContain(name);
    expect(await queue.depth()).toBe(0);
  });

  it('refuses oversized bodies before and while reading them', async () => {
    const { post } = setup({ maxBodyBytes: 1000 }, { worker: false });
    const declared = await post('width=10', Buffer.alloc(5000));
    expect(declared.status).toBe(413);
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(new Uint8Array(500));
        controller.close();
      },
    });
    const streamed = await post('width=10', stream);
    expect(streamed.status).toBe(413);
    expect(((await streamed.json()) as { error: { code: string } }).error.code).toBe('ERR_BALLAST_BODY_TOO_LARGE');
  });

  it.each([
    ['not an image', () => Buffer.from('plain text, not an image'), 415, 'ERR_BALLAST_IMAGE_UNSUPPORTED'],
    ['a truncated JPEG', () => jpeg.subarray(0, jpeg.length - 200), 422, 'ERR_BALLAST_IMAGE_CORRUPT'],
    ['an empty body', () => Buffer.alloc(0), 400, 'ERR_BALLAST_EMPTY_BODY'],
  ])('answers %s with a clear 4xx', async (_name, body, status, code) => {
    const { post } = setup();
    const res = await post('width=10', body());
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
  });

  it.each([
    ['a bad parameter', 'width=0', {}, 400],
    ['a shed request', 'width=10', { maxInflight: 1 }, 503],
  ])('answers %s without reading the body', async (_name, query, options, status) => {
    const { post, api } = setup(options, { worker: false });
    const held = status === 503 ? api.admission.limiter.tryAcquire() : undefined; // the only slot
    let pulled = 0;
    const endless = new ReadableStream({
      pull: (controller) => {
        pulled++;
        controller.enqueue(new Uint8Array(1024));
      },
    });
    const res = await post(query, endless);
    expect(res.status).toBe(status);
    expect(pulled).toBeLessThanOrEqual(1); // at most what the stream offered before anyone asked
    held?.release();
  });

  it.each([
    ['SVG', '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'],
    ['an XML bomb', '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><svg>&b;</svg>'],
    ['PDF', '%PDF-1.7\n1 0 obj\n'],
    ['HTML', '<html><body>not an image</body></html>'],
  ])('refuses %s with 415 before a job exists', async (_name, body) => {
    const { post, queue } = setup({}, { worker: false });
    const res = await post('width=10', body, { 'content-type': 'image/svg+xml' });
    expect([res.status, (await res.json()) as unknown]).toEqual([
      415,
      {
        error: {
          code: 'ERR_BALLAST_IMAGE_UNSUPPORTED',
          message: 'input is not an image in an accepted format (JPEG, PNG, WebP, AVIF, GIF, TIFF)',
        },
      },
    ]);
    expect(queue.stats().enqueued).toBe(0);
  });

  it('accepts SVG only when enabled by name', async () => {
    const { post, queue } = setup({ inputFormats: ['png', 'svg'] }, { worker: false });
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>';
    expect((await post('width=10&mode=async', svg, { 'content-type': 'image/svg+xml' })).status).toBe(202);
    expect((await post('width=10&mode=async')).status).toBe(415); // JPEG is not on this list
    expect(queue.stats().enqueued).toBe(1);
    expect(() => setup({ inputFormats: ['bmp' as never] })).toThrow(/inputFormats must be/);
  });

  it('refuses a non-image content type', async () => {
    const { post } = setup({}, { worker: false });
    const res = await post('width=10', '{}', { 'content-type': 'application/json' });
    expect(res.status).toBe(415);
  });

  it('sheds with 503 and Retry-After when the queue is full', async () => {
    const { post } = setup({}, { worker: false, maxDepth: 1 });
    expect((await post('width=10&mode=async')).status).toBe(202);
    const res = await post('width=10&mode=async');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.headers.get('x-ballast-shed')).toBe('queueFull');
  });

  it('sheds when the expected wait exceeds what the request can wait', async () => {
    // No conversion has run yet: the prior says 300 ms.
    const { post } = setup({ workerSlots: 1, depthCacheMs: 0, priorServiceMs: 300, probeRatio: 0 }, { worker: false });
    expect((await post('width=10&mode=async&deadlineMs=1000')).status).toBe(202);
    expect((await post('width=10&mode=async&deadlineMs=1000')).status).toBe(202);
    const res = await post('width=10&mode=async&deadlineMs=1000'); // 2 ahead × 300 ms + 300 > … budget 400
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(res.headers.get('x-ballast-shed')).toBe('queueTimeout');
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('expected queue wait');
  });

  it('says so when the deadline is shorter than a conversion', async () => {
    const { post } = setup({ priorServiceMs: 300, probeRatio: 0 }, { worker: false });
    const res = await post('width=10&deadlineMs=100');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /deadline of 100 ms leaves no time to wait: a conversion takes about \d+ ms/,
    );
  });

  it('sheds when the server holds maxInflight requests', async () => {
    const { post, api } = setup({ maxInflight: 1 }, { worker: false });
    const held = api.admission.limiter.tryAcquire();
    const second = await post('width=10');
    expect([second.status, second.headers.get('x-ballast-shed'), second.headers.get('retry-after')]).toEqual([503, 'limit', '1']);
    held?.release();
    expect((await post('width=10&mode=async')).status).toBe(202);
  });

  it('answers 504 and cancels the job when the deadline passes (fake time)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { post, queue } = setup({}, { worker: false });
    let settled: Response | undefined;
    const pending = Promise.resolve(post('width=10&deadlineMs=5000')).then((r) => {
      settled = r;
      return r;
    });
    await vi.advanceTimersByTimeAsync(4999);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    const res = await pending;
    expect(res.status).toBe(504);
    const id = res.headers.get('x-job-id') as string;
    expect((await res.json()) as unknown).toEqual({
      error: { code: 'ERR_BALLAST_DEADLINE', message: 'no result within the 5000 ms deadline; the job was cancelled' },
    });
    await vi.advanceTimersByTimeAsync(0); // the cancellation runs beside the answer
    expect((await queue.result(id))?.status).toBe('cancelled');
  });

  it('logs one entry per request with its request id, job id and status', async () => {
    const { logger, entries } = memoryLogger();
    const { post } = setup({ logger });
    const res = await post('width=10', jpeg, { 'content-type': 'image/jpeg', 'x-request-id': 'req-42' });
    expect(res.status).toBe(200);
    expect(entries).toEqual([
      expect.objectContaining({
        level: 'info',
        service: 'api',
        msg: 'request',
        requestId: 'req-42',
        jobId: res.headers.get('x-job-id'),
        tenant: 'anonymous',
        status: 200,
        mode: 'sync',
      }),
    ]);
  });

  it('runs the authentication middleware first, before parameters or body', async () => {
    let pulled = 0;
    const body = new ReadableStream({
      pull: (controller) => {
        pulled++;
        controller.enqueue(new Uint8Array(1024));
      },
    });
    const refuse: ApiOptions['authenticate'] = async () => {
      throw new HttpError(401, 'ERR_BALLAST_AUTH', 'missing API key');
    };
    const { post, queue, api } = setup({ authenticate: refuse }, { worker: false });
    const res = await post('width=bogus', body);
    expect([res.status, (await res.json()) as unknown]).toEqual([401, { error: { code: 'ERR_BALLAST_AUTH', message: 'missing API key' } }]);
    expect(pulled).toBeLessThanOrEqual(1);
    expect(await queue.depth()).toBe(0);
    expect((await api.app.request('/v1/jobs/x')).status).toBe(401);
  });
});

describe('service endpoints', () => {
  it('serves /metrics on the operational app only, and health on both', async () => {
    const { api, post, queue } = setup();
    await post('width=10');
    for (const app of [api.app, api.ops]) {
      expect((await app.request('/healthz')).status).toBe(200);
      expect(await (await app.request('/readyz')).json()).toMatchObject({ ready: true, queue: 'in-process' });
    }
    expect((await api.app.request('/metrics')).status).toBe(404);
    const metrics = await (await api.ops.request('/metrics')).text();
    expect(metrics).toContain('ballast_api_requests_total{mode="sync",status="200"} 1');
    // The depth gauge reads the queue itself, jobs enqueued by other servers included.
    await queue.enqueue({ data: jpeg, params: { resize: { width: 1 } }, deadlineAt: Date.now() + 60_000 });
    await queue.close();
    expect(await (await api.ops.request('/metrics')).text()).toContain('ballast_api_queue_depth 1');
    expect((await api.ops.request('/readyz')).status).toBe(503);
  });
});

describe('drain', () => {
  it('fails health checks while still serving, closing each connection', async () => {
    const { api, post } = setup();
    expect(api.draining).toBe(false);
    api.drain();
    expect(api.draining).toBe(true);
    expect((await api.app.request('/healthz')).status).toBe(503);
    expect((await api.app.request('/readyz')).status).toBe(503);
    const res = await post('width=10');
    expect([res.status, res.headers.get('connection')]).toEqual([200, 'close']);
  });
});

describe('Admission.expectedWaitMs', () => {
  it('is zero while a slot is free, then grows by one conversion per slot-full of jobs ahead', () => {
    const { api } = setup({ workerSlots: 2 }, { worker: false });
    expect(api.admission.expectedWaitMs(0, 100)).toBe(0);
    expect(api.admission.expectedWaitMs(1, 100)).toBe(0);
    expect(api.admission.expectedWaitMs(2, 100)).toBe(50);
    expect(api.admission.expectedWaitMs(6, 100)).toBe(250);
  });
});
