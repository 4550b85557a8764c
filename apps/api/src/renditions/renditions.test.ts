import type { Quota } from '@ballast/app-identity';
import { InProcessQueue, type Lease } from '@ballast/app-queue';
import { silentLogger } from '@ballast/app-shared';
import { ResizeWorker } from '@ballast/app-worker';
import { eventually } from '@ballast/test/http';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ApiOptions, type ApiUsage, createApi } from '../index.ts';
import { TenantQuotas } from '../tenant-quota.ts';
import type { Manifest } from './manifest.ts';

let jpeg: Buffer;
let square: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#336699' } })
    .jpeg()
    .toBuffer();
  square = await sharp({ create: { width: 100, height: 100, channels: 3, background: '#993366' } })
    .jpeg()
    .toBuffer();
});

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const o of open.splice(0).reverse()) await o.close();
});

/** Lets everyone in as `tenant`, under `quota` when given. */
const as =
  (tenant: string, quota?: Quota): NonNullable<ApiOptions['authenticate']> =>
  async (c, next) => {
    c.set('tenant', tenant);
    if (quota) c.set('caller', { quota });
    await next();
  };

function setup(options: Partial<ApiOptions> = {}, { workers = 1 } = {}) {
  const queue = new InProcessQueue({ maxDepth: 100 });
  open.push(queue);
  if (workers > 0) open.push(new ResizeWorker({ queue, concurrency: workers }).start());
  const api = createApi({ queue, logger: silentLogger(), brownout: { autoUpdate: false }, authenticate: as('acme'), ...options });
  open.push(api);
  const post = (query: string, init: { body?: ConstructorParameters<typeof Response>[0]; headers?: Record<string, string> } = {}) =>
    api.app.request(`/v1/renditions?${query}`, {
      method: 'POST',
      body: init.body ?? jpeg,
      headers: { 'content-type': 'image/jpeg', ...init.headers },
      duplex: 'half',
    } as RequestInit);
  return { queue, api, post };
}

const json = async (res: Response): Promise<Manifest> => (await res.json()) as Manifest;

describe('POST /v1/renditions (sync)', () => {
  it('makes every rendition as its own job and answers with a manifest linking to each image', async () => {
    const usage: ApiUsage[] = [];
    const { post, api } = setup({ onUsage: (u) => usage.push(u) }, { workers: 2 });
    const res = await post('widths=80,160&formats=webp,jpeg', { headers: { 'x-request-id': 'req-set-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ballast-harvest')).toBe('1');
    expect(res.headers.get('x-request-id')).toBe('req-set-1');
    expect(res.headers.get('x-ballast-degraded')).toBeNull();
    const manifest = await json(res);
    expect(manifest).toMatchObject({
      status: 'complete',
      asked: 4,
      delivered: 4,
      harvest: 1,
      degraded: { effort: 0, format: 0, width: 0 },
    });
    expect(manifest.id).toMatch(/^acme-[0-9a-f-]{36}-[\w-]+$/);
    expect(manifest.renditions.map((r) => [r.width, r.format, r.status])).toEqual([
      [80, 'webp', 'done'],
      [80, 'jpeg', 'done'],
      [160, 'webp', 'done'],
      [160, 'jpeg', 'done'],
    ]);
    for (const r of manifest.renditions) {
      const image = await api.app.request(r.url as string);
      expect(image.headers.get('content-type')).toBe(r.contentType);
      const meta = await sharp(Buffer.from(await image.arrayBuffer())).metadata();
      expect([meta.width, meta.format]).toEqual([r.width, r.format]);
    }
    // Metered per job, each with the request id.
    expect(usage.map((u) => [u.status, u.tenant, u.requestId])).toEqual(Array(4).fill([200, 'acme', 'req-set-1']));
    expect(new Set(usage.map((u) => u.jobId)).size).toBe(4);
    expect(usage.every((u) => u.bytesIn === jpeg.length && u.bytesOut > 0)).toBe(true);
  });

  it('answers what was ready by the deadline, naming why the rest is missing (fake time)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { post, queue } = setup({}, { workers: 0 });
    const answer = Promise.resolve(post('widths=50,100,200&formats=webp&deadlineMs=3000'));
    // A worker takes the first job only: the cheapest, enqueued first in a sync set.
    const consumer = queue.consumer('test');
    const lease: Lease = await consumer.next();
    const params = lease.job.params as { resize: { width: number }; requestId: string; tenant: string };
    expect([params.resize.width, params.tenant, typeof params.requestId]).toEqual([50, 'acme', 'string']);
    await lease.complete(await sharp(lease.job.data).resize({ width: 50 }).webp().toBuffer(), { format: 'webp' });
    await vi.advanceTimersByTimeAsync(3000);
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ballast-harvest')).toBe('0.333');
    const manifest = await json(res);
    expect(manifest).toMatchObject({ status: 'partial', asked: 3, delivered: 1 });
    expect(manifest.renditions.map((r) => [r.width, r.status, r.reason])).toEqual([
      [50, 'done', undefined],
      [100, 'missing', 'deadline'],
      [200, 'missing', 'deadline'],
    ]);
    await vi.advanceTimersByTimeAsync(0);
    // The jobs not started were cancelled: no worker will spend time on them.
    const stats = queue.stats();
    expect(stats.cancelled).toBe(2);
    await consumer.close();
  });

  it('answers 503 + Retry-After instead of a partial set when the client asks for all or nothing', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { post, queue } = setup({}, { workers: 0 });
    const answer = Promise.resolve(post('widths=50,100&formats=webp&deadlineMs=2000&partial=false'));
    const consumer = queue.consumer('test');
    const lease = await consumer.next();
    await lease.complete(await sharp(lease.job.data).resize({ width: 50 }).webp().toBuffer(), { format: 'webp' });
    await vi.advanceTimersByTimeAsync(2000);
    const res = await answer;
    expect([res.status, res.headers.get('retry-after'), res.headers.get('x-ballast-shed')]).toEqual([503, '1', 'incomplete']);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_BALLAST_INCOMPLETE');
    await consumer.close();
  });

  it('counts a rendition a worker stopped at its deadline as late, not as a fault of the input: 504, never 422', async () => {
    const { post, queue } = setup({}, { workers: 0 });
    const answer = Promise.resolve(post('widths=50&formats=webp&deadlineMs=2000'));
    const consumer = queue.consumer('test');
    const lease = await consumer.next();
    await lease.fail({
      code: 'ERR_BALLAST_DEADLINE',
      message: "conversion ran past the job's deadline (1990 ms left when it started) and was stopped",
    });
    const res = await answer;
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_BALLAST_DEADLINE');
    await consumer.close();
  });

  it('reports a rendition the workers refuse as too large, and answers 413 for an all-or-nothing set', async () => {
    const { post } = setup();
    // 1100 × 1100 AVIF is over the workers' 1 MiP AVIF limit; the rest is fine.
    const res = await post('widths=60,1100&formats=avif,webp&effort=avif:0,webp:0', { body: square });
    expect(res.status).toBe(200);
    const manifest = await json(res);
    expect(manifest.harvest).toBe(0.75);
    const big = manifest.renditions.find((r) => r.width === 1100 && r.format === 'avif');
    expect(big).toMatchObject({ status: 'missing', reason: 'too_large', error: { code: 'ERR_BALLAST_IMAGE_TOO_LARGE' } });
    const strict = await post('widths=60,1100&formats=avif&effort=avif:0&partial=false', { body: square });
    expect(strict.status).toBe(413);
  });
});

describe('degradation', () => {
  it('degrades in order under a low dimmer, says so in headers, manifest and metrics', async () => {
    const { post, api } = setup({ brownout: { autoUpdate: false, initialLevel: 0 } }, { workers: 2 });
    const res = await post('widths=64,128,192&formats=webp,avif');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ballast-degraded')).toBe('effort,format,width');
    expect(res.headers.get('x-ballast-dimmer')).toBe('0.000');
    expect(res.headers.get('x-ballast-harvest')).toBe('0.167');
    const manifest = await json(res);
    expect(manifest.degraded).toEqual({ effort: 6, format: 3, width: 2 });
    expect(manifest.renditions.filter((r) => r.status === 'done')).toMatchObject([
      { width: 64, format: 'webp', effort: 0, requestedEffort: 4 },
    ]);
    expect(manifest.renditions.filter((r) => r.reason === 'degraded').map((r) => [r.width, r.format, r.stage])).toEqual([
      [64, 'avif', 'format'],
      [128, 'webp', 'width'],
      [128, 'avif', 'format'],
      [192, 'webp', 'width'],
      [192, 'avif', 'format'],
    ]);
    const metrics = await (await api.ops.request('/metrics')).text();
    expect(metrics).toContain('ballast_api_degradations_total{stage="format"} 3');
    expect(metrics).toContain('ballast_api_renditions_total{outcome="degraded"} 5');
    expect(metrics).toContain('ballast_brownout_level{controller="api"} 0');
    expect(metrics).toMatch(/ballast_api_harvest_ratio_bucket\{le="0.25"\} 1/);
  });

  it('sheds an all-or-nothing set with 503 while renditions would have to be dropped', async () => {
    const { post, api } = setup({ brownout: { autoUpdate: false, initialLevel: 0 } }, { workers: 0 });
    const res = await post('widths=64,128&formats=webp,avif&partial=false');
    expect([res.status, res.headers.get('x-ballast-shed'), res.headers.get('retry-after')]).toEqual([503, 'brownout', '2']);
    expect(await (await api.ops.request('/metrics')).text()).toContain('ballast_api_shed_total{reason="brownout"} 1');
  });

  it('degrades a set further than the dimmer rather than shed it when the queue has room for fewer jobs', async () => {
    // Nobody converts; 100 ms conversions (the prior) on 2 worker slots, budget 400 ms: room for 10 jobs.
    // A fixed draw for the plan's boundary step: how many renditions a level keeps is then exact.
    const base = { brownout: { autoUpdate: false }, workerSlots: 2, probeRatio: 0, depthCacheMs: 0, random: () => 0.5 };
    const { post, queue, api } = setup(base, { workers: 0 });
    const dimmer = api.dimmer as NonNullable<typeof api.dimmer>;
    const first = await post('widths=64,128,192&formats=webp,avif&mode=async');
    const second = await post('widths=64,128,192&formats=webp,avif&mode=async');
    expect([first.status, second.status]).toEqual([202, 202]);
    expect(first.headers.get('x-ballast-dimmer')).toBe('1.000');
    expect(Number(second.headers.get('x-ballast-dimmer'))).toBeLessThan(1);
    expect((await json(second)).renditions.filter((r) => r.status === 'pending')).toHaveLength(4);
    // The first set planned all 6; the second fitted the 4 left.
    expect(await queue.depth()).toBe(10);
    const third = await post('widths=64,128,192&formats=webp,avif&mode=async');
    expect([third.status, third.headers.get('x-ballast-shed')]).toEqual([503, 'queueTimeout']);
    expect(dimmer.stats().pendingSamples).toBeGreaterThan(0); // the two renditions cut from the second set, heard by the dimmer
    // The same without brownout: the second set is shed whole.
    const plain = setup({ ...base, brownout: false }, { workers: 0 });
    const plainSets = [
      await plain.post('widths=64,128,192&formats=webp,avif&mode=async'),
      await plain.post('widths=64,128,192&formats=webp,avif&mode=async'),
    ];
    expect(plainSets.map((r) => r.status)).toEqual([202, 503]);
  });

  it('lowers a single image’s effort only when it opts in (degrade=true)', async () => {
    const { api, queue } = setup({ brownout: { autoUpdate: false, initialLevel: 0 } }, { workers: 0 });
    const send = (query: string) =>
      api.app.request(`/v1/resize?${query}`, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg' } });
    const plain = await send('width=50&format=avif&mode=async');
    const opted = await send('width=50&format=avif&mode=async&degrade=true');
    expect(plain.headers.get('x-ballast-degraded')).toBeNull();
    expect(opted.headers.get('x-ballast-degraded')).toBe('effort');
    const consumer = queue.consumer('test');
    const efforts = [];
    for (let i = 0; i < 2; i++) efforts.push(((await consumer.next()).job.params as { resize: { effort: number } }).resize.effort);
    expect(efforts).toEqual([4, 0]);
    expect((await send('width=50&degrade=maybe')).status).toBe(400);
    await consumer.close();
  });

  it('dims while sync requests use more of their deadline than the setpoint, and comes back once they use less', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const { post, queue, api } = setup({ brownout: { autoUpdate: false, setpointMs: 500 } }, { workers: 0 });
    const dimmer = api.dimmer as NonNullable<typeof api.dimmer>;
    // Nobody converts: every set waits until its deadline (1000 ‰ of it).
    const slow = [post('widths=50&formats=webp&deadlineMs=1000'), post('widths=50&formats=webp&deadlineMs=1000')];
    await vi.advanceTimersByTimeAsync(1000);
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual([504, 504]);
    expect(dimmer.stats().pendingSamples).toBe(2);
    const dimmed = dimmer.update();
    expect(dimmed).toBeLessThan(1);
    // A shed or refused request is no sample.
    expect((await post('widths=50&formats=gif')).status).toBe(400);
    expect(dimmer.stats().pendingSamples).toBe(0);
    // Quick answers (200 ms of a 1000 ms deadline): θ goes back up.
    const consumer = queue.consumer('test');
    const quick = post('widths=50&formats=webp&deadlineMs=1000');
    const lease = await consumer.next();
    await vi.advanceTimersByTimeAsync(200);
    await lease.complete(await sharp(lease.job.data).resize({ width: 50 }).webp().toBuffer(), { format: 'webp' });
    expect((await quick).status).toBe(200);
    expect(dimmer.update()).toBeGreaterThan(dimmed);
    await consumer.close();
  });
});

describe('POST /v1/renditions (async) and GET /v1/renditions/:id', () => {
  it('answers 202 with a manifest whose entries fill in as renditions finish', async () => {
    const { post, api, queue } = setup({}, { workers: 0 });
    const res = await post('widths=40,80&formats=webp&mode=async');
    expect(res.status).toBe(202);
    const accepted = await json(res);
    expect(res.headers.get('location')).toBe(`/v1/renditions/${accepted.id}`);
    expect(accepted).toMatchObject({ status: 'pending', delivered: 0 });
    expect(accepted.renditions.every((r) => r.status === 'pending' && r.url?.startsWith('/v1/jobs/acme-'))).toBe(true);
    const pending = await api.app.request(`/v1/renditions/${accepted.id}`);
    expect([pending.status, pending.headers.get('retry-after')]).toEqual([200, '1']);
    open.push(new ResizeWorker({ queue, concurrency: 1 }).start());
    for (const r of accepted.renditions) await queue.wait((r.url as string).slice('/v1/jobs/'.length));
    const done = await api.app.request(`/v1/renditions/${accepted.id}`);
    expect(done.headers.get('x-ballast-harvest')).toBe('1');
    expect(await json(done)).toMatchObject({ status: 'complete', delivered: 2, harvest: 1 });
  });

  it('keeps sets apart between tenants, and refuses forged or malformed ids', async () => {
    const { post, api } = setup(
      {
        authenticate: async (c, next) => {
          c.set('tenant', c.req.header('x-tenant') ?? 'acme');
          await next();
        },
      },
      { workers: 0 },
    );
    const res = await post('widths=40&formats=webp&mode=async');
    const { id, renditions } = await json(res);
    const asOther = { headers: { 'x-tenant': 'globex' } };
    expect((await api.app.request(`/v1/renditions/${id}`, asOther)).status).toBe(404);
    expect((await api.app.request(renditions[0]?.url as string, asOther)).status).toBe(404);
    expect((await api.app.request(`/v1/renditions/${id}`, { ...asOther, method: 'DELETE' })).status).toBe(404);
    for (const forged of [
      `${id.slice(0, -2)}!!`,
      'acme-x',
      `acme-${'a'.repeat(600)}`,
      `${id.slice(0, 'acme-'.length + 37)}AAAA`,
      `${id}A`,
    ]) {
      expect((await api.app.request(`/v1/renditions/${encodeURIComponent(forged)}`)).status).toBe(404);
    }
    const cancelled = await api.app.request(`/v1/renditions/${id}`, { method: 'DELETE' });
    expect(await cancelled.json()).toEqual({ id, cancelled: 1 });
  });
});

describe('hostile and malformed requests', () => {
  it.each([
    ['', 'widths'],
    ['widths=', 'widths'],
    ['widths=0', 'widths'],
    ['widths=8193', 'widths'],
    ['widths=abc', 'widths'],
    ['widths=1e3', 'widths'],
    ['widths=10,10', 'widths'],
    ['widths=1,2,3,4,5,6,7,8,9', 'widths'],
    ['widths=10&widths=20', 'widths'],
    ['widths=10&formats=gif', 'formats'],
    ['widths=10&formats=webp,webp', 'formats'],
    ['widths=1,2,3,4,5,6,7,8&formats=webp,avif,jpeg', 'renditions'],
    ['widths=10&formats=avif&effort=avif:5', 'effort'],
    ['widths=10&formats=jpeg&effort=webp:2', 'effort'],
    ['widths=10&formats=webp&effort=4', 'effort'],
    ['widths=10&formats=webp&effort=webp:1,webp:2', 'effort'],
    ['widths=10&quality=0', 'quality'],
    ['widths=10&mode=later', 'mode'],
    ['widths=10&deadlineMs=0', 'deadlineMs'],
    ['widths=10&partial=maybe', 'partial'],
    ['widths=10&width=10', 'width'],
    ['widths=10&<script>=1', 'unknown parameter'],
  ])('refuses %s with 400 naming %s, without reading the body', async (query, name) => {
    const { post, queue } = setup({}, { workers: 0 });
    let pulled = 0;
    const endless = new ReadableStream({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const res = await post(query, { body: endless });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('ERR_BALLAST_INVALID_OPTION');
    expect(error.message).toContain(name);
    expect(error.message.length).toBeLessThan(400);
    expect(pulled).toBeLessThanOrEqual(1);
    expect(queue.stats().enqueued).toBe(0);
  });

  it('quotes a hostile parameter name only in part', async () => {
    const { post } = setup({}, { workers: 0 });
    const res = await post(`widths=10&${'x'.repeat(5000)}=1`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message.length).toBeLessThan(400);
  });

  it('refuses what is not an image: 415 for the content type or the bytes, 400 for an empty body', async () => {
    const { post, queue } = setup({}, { workers: 0 });
    expect((await post('widths=10', { headers: { 'content-type': 'text/html' } })).status).toBe(415);
    expect((await post('widths=10', { body: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>') })).status).toBe(415);
    expect((await post('widths=10', { body: new Uint8Array(0) })).status).toBe(400);
    expect(queue.stats().enqueued).toBe(0);
  });

  it('counts the concurrent-job quota per rendition job', async () => {
    const quotas = new TenantQuotas();
    open.push(quotas);
    const quota: Quota = { requestsPerSecond: 1000, concurrentJobs: 3, monthlyCpuSeconds: 1 };
    const { post, queue } = setup({ quotas, authenticate: as('tn_q', quota) }, { workers: 0 });
    const four = await post('widths=10,20&formats=webp,jpeg&mode=async');
    expect([four.status, ((await four.json()) as { error: { code: string } }).error.code]).toEqual([429, 'ERR_BALLAST_TOO_MANY_JOBS']);
    expect(queue.stats().enqueued).toBe(0);
    const two = await post('widths=10,20&formats=webp&mode=async');
    expect(two.status).toBe(202);
    // Two of three slots are held by the async set's jobs until they finish.
    expect((await post('widths=10,20&formats=webp&mode=async')).status).toBe(429);
    open.push(new ResizeWorker({ queue, concurrency: 1 }).start());
    const { renditions } = await json(two);
    for (const r of renditions) await queue.wait((r.url as string).slice('/v1/jobs/'.length));
    await eventually(async () => expect((await post('widths=10,20&formats=webp&mode=async')).status).toBe(202));
  });
});
