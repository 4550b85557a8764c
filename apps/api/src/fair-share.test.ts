import { InProcessQueue } from '@ballast/app-queue';
import { listen, silentLogger } from '@ballast/app-shared';
import { type RedisServer, startRedis } from '@ballast/test/redis';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CostBudget, createApi, FairShare, type FairShareOptions, jobCostMs, LeasedSlots } from './index.ts';

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
    // Redis given 5 s to answer: on a loaded machine a slow answer must not count as a failure (which admits).
    const one = new LeasedSlots({ redis: r1, prefix: 'test:slots:', redisTimeoutMs: 5000 });
    const two = new LeasedSlots({ redis: r2, prefix: 'test:slots:', redisTimeoutMs: 5000 });
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

/** A clock that moves only when told. */
function manualClock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** AVIF 640×480 at effort 4: about 3.7 s of indicative cost, so a 5 s bucket holds one. */
const DEAR = 'format=avif&width=640&height=480&fit=fill&effort=4&mode=async';
/** AVIF 1024×1024 at effort 4: about 12.6 s, more than a 5 s bucket can ever hold. */
const TOO_DEAR = 'format=avif&width=1024&height=1024&fit=fill&effort=4&mode=async';

describe('CostBudget', () => {
  it('names the invalid option', () => {
    expect(() => new CostBudget('anonymousBudget', { msPerSec: 0 })).toThrow(/anonymousBudget\.msPerSec/);
    expect(() => new CostBudget('tenantBudget', { msPerSec: 10, burstMs: 0 })).toThrow(/tenantBudget\.burstMs/);
    expect(() => new FairShare({ anonymousBudget: { msPerSec: Number.NaN } })).toThrow(/anonymousBudget\.msPerSec/);
    expect(new CostBudget('b', { msPerSec: 250 }).burstMs).toBe(2500); // 10 s of its rate by default
  });

  it('books cost per client, refills at its rate, and tells how long until a request fits', async () => {
    const clock = manualClock();
    const budget = new CostBudget('b', { msPerSec: 100, burstMs: 1000 }, { clock });
    expect((await budget.book('a', 600)).allowed).toBe(true);
    const refused = await budget.book('a', 600);
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 2000 }); // 400 held, 200 more at 100/s
    expect((await budget.book('b', 1000)).allowed).toBe(true); // another client's bucket is its own
    clock.advance(2000);
    expect((await budget.book('a', 600)).allowed).toBe(true);
    expect(budget.fits(1000)).toBe(true);
    expect(budget.fits(1001)).toBe(false);
    budget[Symbol.dispose]();
  });

  it('is shared by every API server on the same Redis', async () => {
    const [r1, r2] = [new Redis(redis.url), new Redis(redis.url)];
    open.push({ close: () => r1.disconnect() }, { close: () => r2.disconnect() });
    // Redis given 5 s to answer: on a loaded machine a slow answer must not count as a failure (which admits).
    const counting = { prefix: 'test:budget:', redisTimeoutMs: 5000 };
    const one = new CostBudget('shared', { msPerSec: 1, burstMs: 5000 }, { redis: r1, ...counting });
    const two = new CostBudget('shared', { msPerSec: 1, burstMs: 5000 }, { redis: r2, ...counting });
    expect((await one.book('address:198.51.100.9', 4000)).allowed).toBe(true);
    expect((await two.book('address:198.51.100.9', 4000)).allowed).toBe(false);
    expect((await two.book('address:198.51.100.10', 4000)).allowed).toBe(true);
  });

  it('admits when Redis fails, and counts it', async () => {
    const down = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    open.push({ close: () => down.disconnect() });
    const budget = new CostBudget('b', { msPerSec: 1, burstMs: 10 }, { redis: down });
    expect((await budget.book('a', 10)).allowed).toBe(true);
    expect((await budget.book('a', 10)).allowed).toBe(true);
    expect(budget.redisErrors).toBe(2);
  });
});

/** An API server on a real listener, its queue without workers (async jobs stay), fair share with a cost budget on a manual clock. */
async function budgetServer() {
  const clock = manualClock();
  const queue = new InProcessQueue({ maxDepth: 1000 });
  // costlyMs out of the way: only the budget limits the costly requests here.
  const fairShare = new FairShare({ workerSlots: 2, costlyMs: 1e9, anonymousBudget: { msPerSec: 10, burstMs: 5000 }, clock });
  const api = createApi({ queue, workerSlots: 2, fairShare, logger: silentLogger() });
  const listening = await listen(api.app.fetch);
  open.push(queue, api, listening, fairShare);
  const post = async (query: string, client: string) => {
    const res = await fetch(`${listening.url}/v1/resize?${query}`, {
      method: 'POST',
      body: jpeg,
      headers: { 'content-type': 'image/jpeg', 'x-ballast-client': client },
    });
    const body = (await res.json()) as { error?: { code: string; message: string } };
    return { status: res.status, code: body.error?.code, message: body.error?.message, retryAfter: res.headers.get('retry-after') };
  };
  return { post, clock, fairShare, queue };
}

describe('cost budget at the API', () => {
  it('holds one anonymous client to its budget of conversion time; another client is served', async () => {
    const { post, clock, fairShare, queue } = await budgetServer();
    expect(jobCostMs({ width: 640, height: 480, format: 'avif', effort: 4 })).toBeGreaterThan(2500);
    const attacker = '198.51.100.66';
    expect((await post(DEAR, attacker)).status).toBe(202);
    // Its bucket (5000) holds about 1300 now: the next dear request waits for the refill (10 ms/s).
    const refused = await post(DEAR, attacker);
    expect(refused).toMatchObject({ status: 429, code: 'ERR_BALLAST_CLIENT_LIMIT' });
    expect(Number(refused.retryAfter)).toBeGreaterThan(200);
    expect(refused.message).toMatch(/10 ms per second, 5000 ms at once/);
    // Cheap work of the same client still fits what is left; every other client has its own budget.
    expect((await post('width=16&mode=async', attacker)).status).toBe(202);
    expect((await post(DEAR, '198.51.100.67')).status).toBe(202);
    for (let i = 0; i < 3; i++) expect((await post('width=64&mode=async', '198.51.100.68')).status).toBe(202);
    // Once its bucket has refilled (the cheap job's 8 ms took 0.8 s more of its rate), it is served again.
    clock.advance(Number(refused.retryAfter) * 1000 - 1000);
    expect((await post(DEAR, attacker)).status).toBe(429);
    clock.advance(2000);
    expect((await post(DEAR, attacker)).status).toBe(202);
    expect(fairShare.stats().refused).toMatchObject({ budget: 2, tooCostly: 0 });
    expect(await queue.depth()).toBe(7); // a refused request enqueued nothing
  });

  it('refuses a request dearer than the whole budget with 422, before anything is booked', async () => {
    const { post, fairShare } = await budgetServer();
    const res = await post(TOO_DEAR, '198.51.100.70');
    expect(res).toMatchObject({ status: 422, code: 'ERR_BALLAST_TOO_COSTLY', retryAfter: null });
    expect(res.message).toMatch(/more than the 5000 ms an anonymous client may book at once.*send an API key/);
    expect((await post(DEAR, '198.51.100.70')).status).toBe(202); // nothing of its bucket was spent
    expect(fairShare.stats().refused).toMatchObject({ tooCostly: 1, budget: 0 });
  });

  it('gives a refused request’s job slots back', async () => {
    const clock = manualClock();
    const share = new FairShare({
      workerSlots: 2,
      maxJobsPerClient: 2,
      costlyMs: 1e9,
      anonymousBudget: { msPerSec: 1, burstMs: 5000 },
      clock,
    });
    open.push(share);
    const client = { key: 'address:198.51.100.71', anonymous: true };
    await share.claim(client, [4000], 1000);
    await expect(share.claim(client, [4000], 1000)).rejects.toMatchObject({ status: 429 });
    // The refused claim took no job slot: one of the two is still free.
    expect((await share.claim(client, [10], 1000)).slots).toHaveLength(1);
  });

  it('applies the tenant budget to keyed clients and the anonymous one to addresses', async () => {
    const share = new FairShare({
      workerSlots: 2,
      costlyMs: 1e9,
      anonymousBudget: { msPerSec: 1, burstMs: 1000 },
      tenantBudget: { msPerSec: 1, burstMs: 20_000 },
      clock: manualClock(),
    });
    open.push(share);
    await expect(share.claim({ key: 'address:198.51.100.72', anonymous: true }, [5000], 1000)).rejects.toMatchObject({ status: 422 });
    await share.claim({ key: 'tenant:acme', anonymous: false }, [5000, 5000], 1000);
    await share.claim({ key: 'tenant:acme', anonymous: false }, [10_000], 1000);
    await expect(share.claim({ key: 'tenant:acme', anonymous: false }, [5000], 1000)).rejects.toMatchObject({ status: 429 });
    await share.claim({ key: 'tenant:other', anonymous: false }, [5000], 1000);
  });
});
