import { InProcessQueue } from '@ballast/app-queue';
import { listen, silentLogger } from '@ballast/app-shared';
import { type RedisServer, startRedis } from '@ballast/test/redis';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApi, FairShare, type FairShareOptions, jobCostMs, LeasedSlots } from './index.ts';

let jpeg: Buffer;
let redis: RedisServer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 64, height: 32, channels: 3, background: '#336699' } })
    .jpeg()
    .toBuffer();
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

const AVIF = 'format=avif&width=1024&height=1024&fit=fill&effort=4&mode=async';

/** An API server on a real listener (so the peer address is known), its queue without workers: async jobs stay. */
async function server(fairShare: FairShareOptions | FairShare) {
  const queue = new InProcessQueue({ maxDepth: 1000 });
  const api = createApi({ queue, workerSlots: 2, fairShare, logger: silentLogger() });
  const listening = await listen(api.app.fetch);
  open.push(queue, api, listening);
  const post = async (query: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${listening.url}/v1/resize?${query}`, {
      method: 'POST',
      body: jpeg,
      headers: { 'content-type': 'image/jpeg', ...headers },
    });
    const body = (await res.json()) as { error?: { code: string } };
    return { status: res.status, code: body.error?.code, shed: res.headers.get('x-ballast-shed') };
  };
  return { api, queue, post };
}

describe('jobCostMs', () => {
  it('puts AVIF at high effort tens of times above a JPEG of the same size', () => {
    const jpegCost = jobCostMs({ width: 1024, height: 1024, format: 'jpeg' });
    const avifCost = jobCostMs({ width: 1024, height: 1024, format: 'avif', effort: 4 });
    expect(avifCost / jpegCost).toBeGreaterThan(20);
    expect(avifCost).toBeGreaterThan(2000); // costly at the default threshold
    expect(jobCostMs({ width: 64 })).toBeLessThan(2000);
  });
});

describe('FairShare options', () => {
  it('names the invalid option', () => {
    expect(() => new FairShare({ maxCostly: 0 })).toThrow(/maxCostly/);
    expect(() => new FairShare({ costlyMs: -1 })).toThrow(/costlyMs/);
    expect(() => new FairShare({ trustedProxies: ['not an address'] })).toThrow(/not an address/);
  });
});

describe('LeasedSlots', () => {
  it('takes every claim or none, in process', async () => {
    const slots = new LeasedSlots();
    const a = await slots.acquire([{ key: 'x', limit: 2, units: 2 }], 1000);
    expect(a.held).toBeDefined();
    const refused = await slots.acquire(
      [
        { key: 'y', limit: 5, units: 1 },
        { key: 'x', limit: 2, units: 1 },
      ],
      1000,
    );
    expect(refused.refused).toBe(1);
    expect(slots.held('y')).toBe(0); // nothing taken of the claim that fitted
    a.held?.release(0, 1);
    a.held?.release(0, 1);
    a.held?.release(0, 1); // a unit given back twice counts once
    expect(slots.held('x')).toBe(0);
  });

  it('counts over every process sharing a Redis, all or nothing', async () => {
    const [r1, r2] = [new Redis(redis.url), new Redis(redis.url)];
    open.push({ close: () => r1.disconnect() }, { close: () => r2.disconnect() });
    const one = new LeasedSlots({ redis: r1, prefix: 'test:slots:' });
    const two = new LeasedSlots({ redis: r2, prefix: 'test:slots:' });
    const first = await one.acquire([{ key: 'lane', limit: 1, units: 1 }], 60_000);
    expect(first.held).toBeDefined();
    const both = await two.acquire(
      [
        { key: 'client', limit: 3, units: 1 },
        { key: 'lane', limit: 1, units: 1 },
      ],
      60_000,
    );
    expect(both.refused).toBe(1);
    expect(await r1.zcard('test:slots:client')).toBe(0);
    first.held?.releaseAll();
    await expect.poll(() => r1.zcard('test:slots:lane')).toBe(0);
    expect((await two.acquire([{ key: 'lane', limit: 1, units: 1 }], 60_000)).held).toBeDefined();
  });
});

describe('fair share at the API', () => {
  it('bounds the jobs one anonymous client has waiting; another client is still admitted', async () => {
    const { post, queue } = await server({ maxJobsPerClient: 3 });
    for (let i = 0; i < 3; i++) expect((await post('width=16&mode=async', { 'x-ballast-client': '198.51.100.1' })).status).toBe(202);
    expect(await post('width=16&mode=async', { 'x-ballast-client': '198.51.100.1' })).toMatchObject({
      status: 429,
      code: 'ERR_BALLAST_CLIENT_LIMIT',
    });
    expect((await post('width=16&mode=async', { 'x-ballast-client': '198.51.100.2' })).status).toBe(202);
    expect(await queue.depth()).toBe(4);
  });

  it('lets one client run one costly conversion at a time, and all clients only the costly lane', async () => {
    const { post, api } = await server({});
    const attacker = { 'x-ballast-client': '198.51.100.66' };
    expect((await post(AVIF, attacker)).status).toBe(202);
    // The same client's second costly request: its own share is spent (429, not an overload signal).
    expect(await post(AVIF, attacker)).toMatchObject({ status: 429, code: 'ERR_BALLAST_CLIENT_LIMIT', shed: null });
    // Another client's costly request: the lane (⌊2 slots / 2⌋ = 1) is full, 503 with the class's own shed reason.
    expect(await post(AVIF, { 'x-ballast-client': '198.51.100.67' })).toMatchObject({
      status: 503,
      code: 'ERR_BALLAST_OVERLOADED',
      shed: 'costly',
    });
    // Ordinary work, from either, is not touched.
    expect((await post('width=16&mode=async', attacker)).status).toBe(202);
    expect(api.fairShare?.stats().refused).toEqual({ clientJobs: 0, clientCostly: 1, costly: 1, budget: 0, tooCostly: 0 });
  });

  it('takes x-ballast-client only from a trusted peer: a client cannot claim to be many', async () => {
    const { post } = await server({ maxJobsPerClient: 2, trustedProxies: [] });
    expect((await post('width=16&mode=async', { 'x-ballast-client': '198.51.100.1' })).status).toBe(202);
    expect((await post('width=16&mode=async', { 'x-ballast-client': '198.51.100.2' })).status).toBe(202);
    expect(await post('width=16&mode=async', { 'x-ballast-client': '198.51.100.3' })).toMatchObject({ status: 429 });
  });

  it('gives a sync job’s share back when it is answered', async () => {
    const { post } = await server({ maxJobsPerClient: 1 });
    // No worker: the sync job times out at its deadline, and its slot is given back.
    expect((await post('width=16&deadlineMs=300')).status).toBe(504);
    expect((await post('width=16&mode=async')).status).toBe(202);
  });

  it('is off with fairShare: false', async () => {
    const queue = new InProcessQueue({ maxDepth: 1000 });
    const api = createApi({ queue, workerSlots: 2, fairShare: false, logger: silentLogger() });
    open.push(queue, api);
    expect(api.fairShare).toBeUndefined();
  });
});
