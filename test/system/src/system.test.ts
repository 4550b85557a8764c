/**
 * The reference system end to end over real HTTP on loopback: gateway → three API
 * servers → queue → sharp workers, on both queue implementations.
 */

import { InProcessQueue, type JobQueue, RedisQueue } from '@ballast/app-queue';
import { memoryLogger } from '@ballast/app-shared';
import { type RunningSystem, startSystem } from '@ballast/app-system';
import { type RedisServer, startRedis } from '@ballast/test/redis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bombPng, errorCode, eventually, resize, smallJpeg } from './helpers.ts';

let redis: RedisServer;
let jpeg: Buffer;
beforeAll(async () => {
  redis = await startRedis();
  jpeg = await smallJpeg();
});
afterAll(async () => {
  await redis?.stop();
});

const modes: Array<[string, () => (service: string) => JobQueue]> = [
  [
    'in-process',
    () => {
      const shared = new InProcessQueue();
      return () => shared;
    },
  ],
  [
    'redis',
    () => {
      const prefix = `sys${Date.now()}:`;
      return () => new RedisQueue({ connection: redis.url, minReplicas: 0, prefix, pollMs: 100 });
    },
  ],
];

describe.each(modes)('the system on the %s queue', (_mode, queues) => {
  let system: RunningSystem;
  const { logger, entries } = memoryLogger();
  beforeAll(async () => {
    const queue = queues();
    system = await startSystem({ queue, workers: 1, workerConcurrency: 2, logger });
  });
  afterAll(async () => {
    await system?.close();
  });

  it('resizes synchronously through the gateway', async () => {
    const res = await resize(system.url, 'width=100&format=webp', jpeg);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/webp');
    expect(res.headers.get('x-upstream')).toMatch(/^api-[123]$/);
    // The worker's metering, two decimals: a conversion costs some CPU and some wall time.
    for (const header of ['x-cpu-ms', 'x-wall-ms', 'x-queued-ms']) expect(res.headers.get(header)).toMatch(/^\d+\.\d\d$/);
    expect(Number(res.headers.get('x-cpu-ms'))).toBeGreaterThan(0);
    expect(Number(res.headers.get('x-wall-ms'))).toBeGreaterThan(0);
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 100, 75]);
  });

  it('logs one request under one request id in the gateway, an API server and the worker', async () => {
    const requestId = `trace-${Math.random()}`;
    const res = await resize(system.url, 'width=20', jpeg, { headers: { 'content-type': 'image/jpeg', 'x-request-id': requestId } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(requestId);
    await res.arrayBuffer();
    await eventually('the gateway entry', 2000, async () =>
      entries.some((e) => e.service === 'gateway' && e.requestId === requestId) ? true : undefined,
    );
    const services = entries.filter((e) => e.requestId === requestId).map((e) => `${e.service} ${e.msg}`);
    expect(services.sort()).toEqual([`${res.headers.get('x-upstream')} request`, 'gateway request', 'worker job done']);
  });

  it('resizes asynchronously: 202, then the result from any API server', async () => {
    const accepted = await resize(system.url, 'width=64&height=64&fit=cover&format=png&mode=async', jpeg);
    expect(accepted.status).toBe(202);
    const { result } = (await accepted.json()) as { result: string };
    const done = await eventually('the async result', 10_000, async () => {
      const res = await fetch(`${system.url}${result}`);
      if (res.status === 202) {
        await res.arrayBuffer();
        return undefined;
      }
      return res;
    });
    expect(done.status).toBe(200);
    const meta = await sharp(Buffer.from(await done.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 64, 64]);
  });

  it('spreads requests over the three API servers', async () => {
    const served = new Map<string, number>();
    // Three at a time: a queue no deeper than the worker slots, so admission never sheds here.
    // Ten rounds: uniform picks would leave a server out of all thirty with a chance of
    // 3 × (2/3)³⁰ ≈ 2 × 10⁻⁵, and P2C favours a server left idle, so it does so less often.
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        Array.from({ length: 3 }, async () => {
          const res = await resize(system.url, 'width=32', jpeg);
          expect(res.status).toBe(200);
          const upstream = res.headers.get('x-upstream') ?? 'none';
          served.set(upstream, (served.get(upstream) ?? 0) + 1);
          await res.arrayBuffer();
        }),
      );
    }
    expect([...served.keys()].sort()).toEqual(['api-1', 'api-2', 'api-3']);
  });

  it.each([
    ['not an image', () => Promise.resolve(Buffer.from('just some text, not an image')), 'width=10', 415, 'ERR_BALLAST_IMAGE_UNSUPPORTED'],
    ['a truncated JPEG', async () => jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), 'width=10', 422, 'ERR_BALLAST_IMAGE_CORRUPT'],
    ['a decompression bomb PNG', bombPng, 'width=10', 413, 'ERR_BALLAST_IMAGE_TOO_LARGE'],
    [
      'an AVIF output over its pixel limit',
      async () => jpeg,
      'format=avif&width=4000&height=3000&fit=fill',
      413,
      'ERR_BALLAST_IMAGE_TOO_LARGE',
    ],
    ['an out-of-range width', async () => jpeg, 'width=100000', 400, 'ERR_BALLAST_INVALID_OPTION'],
    ['a malformed quality', async () => jpeg, 'quality=high', 400, 'ERR_BALLAST_INVALID_OPTION'],
    ['an unknown fit', async () => jpeg, 'fit=stretch', 400, 'ERR_BALLAST_INVALID_OPTION'],
    ['an oversized body', async () => Buffer.alloc(11 * 1024 * 1024), 'width=10', 413, 'ERR_BALLAST_BODY_TOO_LARGE'],
  ])('answers %s with a clear 4xx and keeps serving', async (_name, body, query, status, code) => {
    const res = await resize(system.url, query, await body());
    expect(res.status).toBe(status);
    expect(await errorCode(res)).toBe(code);
    const after = await resize(system.url, 'width=16', jpeg);
    expect(after.status).toBe(200);
    await after.arrayBuffer();
  });

  it('cancels the job when the client goes away', async () => {
    const before = system.apis.reduce((n, { queue }) => n + queue.stats().cancelled, 0);
    await Promise.all(system.workers.map((w) => w.close())); // nobody converts: the request waits
    try {
      const controller = new AbortController();
      const pending = resize(system.url, 'width=10&deadlineMs=30000', jpeg, { signal: controller.signal }).catch((e) => e);
      const id = await eventually('the job to be enqueued', 5000, async () => {
        for (const { queue } of system.apis) if (queue.stats().enqueued > 0 && (await queue.depth()) > 0) return true;
        return undefined;
      });
      expect(id).toBe(true);
      controller.abort();
      await pending;
      await eventually('the cancellation', 5000, async () => {
        const now = system.apis.reduce((n, { queue }) => n + queue.stats().cancelled, 0);
        return now > before ? true : undefined;
      });
      expect(await system.apis[0]?.queue.depth()).toBeLessThanOrEqual(1);
    } finally {
      system.workers.splice(0);
      system.addWorker();
    }
  });

  it('reports health, readiness and metrics on every service’s operational listener, not on the public one', async () => {
    expect((await fetch(`${system.opsUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${system.opsUrl}/readyz`)).json()).toMatchObject({ ready: true, upstreamsUp: 3 });
    expect((await fetch(`${system.url}/metrics`)).status).toBe(404);
    for (const { ops } of system.apis) {
      expect((await fetch(`${ops.url}/readyz`)).status).toBe(200);
      expect(await (await fetch(`${ops.url}/metrics`)).text()).toContain('ballast_api_requests_total');
    }
    const gatewayMetrics = await (await fetch(`${system.opsUrl}/metrics`)).text();
    expect(gatewayMetrics).toContain('ballast_gateway_requests_total');
    // The embedded workers have no port of their own: their metrics are the gateway's.
    expect(gatewayMetrics).toMatch(/ballast_worker_jobs_total\{outcome="done"\} [1-9]/);
    const cpuSeconds = /^ballast_worker_cpu_seconds_total (\S+)$/m.exec(gatewayMetrics)?.[1];
    expect(Number(cpuSeconds)).toBeGreaterThan(0);
  });
});
