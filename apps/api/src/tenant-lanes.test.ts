import { generateKey, IdentityClient, InProcessFeed, type KeyEntry, type TenantEntry } from '@ballast/app-identity';
import { InProcessQueue } from '@ballast/app-queue';
import { listen, silentLogger } from '@ballast/app-shared';
import { ResizeWorker } from '@ballast/app-worker';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApi, identityAuthentication } from './index.ts';
import { TenantLanes } from './tenant-lanes.ts';
import { TenantQuotas } from './tenant-quota.ts';

/** Resolves with what `promise` settled to so far, without waiting: the slot, 'waiting', or the rejection. */
async function state<T>(promise: Promise<T>): Promise<T | 'waiting' | { rejected: unknown }> {
  return Promise.race([promise.catch((e: unknown) => ({ rejected: e })), new Promise<'waiting'>((r) => setImmediate(() => r('waiting')))]);
}

describe('TenantLanes', () => {
  it('lets a tenant alone use every slot, and queues its jobs beyond them in its lane', async () => {
    const lanes = new TenantLanes({ workerSlots: 2 });
    const a1 = await lanes.take('a');
    await lanes.take('a');
    const a3 = lanes.take('a');
    expect(await state(a3)).toBe('waiting');
    expect(lanes.stats()).toMatchObject({ activeTenants: 1, held: 2, waiting: 1, waited: 1 });
    a1.release();
    a1.release(); // idempotent
    expect(await state(a3)).toHaveProperty('release');
    expect(lanes.stats()).toMatchObject({ held: 2, waiting: 0 });
  });

  it("never lets a flooding tenant's waiting jobs go before another tenant's job", async () => {
    const lanes = new TenantLanes({ workerSlots: 2 });
    const running = [await lanes.take('flood'), await lanes.take('flood')] as const;
    const flood = Array.from({ length: 20 }, () => lanes.take('flood'));
    // Another tenant arrives: every active tenant has a place at least, so its job enters the
    // queue at once, behind the two running conversions and none of the flood's waiting jobs.
    expect(await state(lanes.take('quiet'))).toHaveProperty('release');
    expect(lanes.share()).toBe(1);
    running[0].release();
    // The flood is back to its share of one slot: its next job still waits.
    expect(await state(flood[0] as Promise<unknown>)).toBe('waiting');
    running[1].release();
    expect(await state(flood[0] as Promise<unknown>)).toHaveProperty('release');
    expect(await state(flood[1] as Promise<unknown>)).toBe('waiting');
    expect(lanes.stats()).toMatchObject({ activeTenants: 2, held: 2, waiting: 19 });
  });

  it('serves the waiting lanes round robin when a tenant leaves and the shares grow', async () => {
    const lanes = new TenantLanes({ workerSlots: 4 });
    const [, , c] = [await lanes.take('a'), await lanes.take('b'), await lanes.take('c')];
    expect(lanes.share()).toBe(1);
    const order: string[] = [];
    for (const t of ['a', 'a', 'b', 'b']) void lanes.take(t).then(() => order.push(t));
    expect(lanes.stats().waiting).toBe(4);
    c?.release(); // two tenants left: two slots each
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['a', 'b']);
    expect(lanes.stats()).toMatchObject({ activeTenants: 2, held: 4, waiting: 2 });
  });

  it('gives up a wait when its signal aborts, and the next in the lane keeps its turn', async () => {
    const lanes = new TenantLanes({ workerSlots: 1 });
    const held = await lanes.take('a');
    const controller = new AbortController();
    const first = lanes.take('a', controller.signal);
    const second = lanes.take('a');
    controller.abort(new Error('deadline'));
    expect(await state(first)).toEqual({ rejected: new Error('deadline') });
    expect(lanes.stats()).toMatchObject({ abandoned: 1, waiting: 1 });
    held.release();
    expect(await state(second)).toHaveProperty('release');
    expect(lanes.stats()).toMatchObject({ held: 1, waiting: 0, activeTenants: 1 });
    await expect(lanes.take('a', AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
  });

  it('refuses an invalid worker slot count by name', () => {
    expect(() => new TenantLanes({ workerSlots: 0 })).toThrow(/workerSlots/);
  });
});

describe('tenant lanes through the API (real HTTP, real sharp workers)', () => {
  const open: Array<{ close(): unknown }> = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  });

  /** Two tenants with generous quotas (the flood stays within its rate and concurrent jobs), two worker slots. */
  async function serve(workerSlots: number) {
    const feed = new InProcessFeed();
    const keys: Record<string, string> = {};
    const changes: Array<TenantEntry | KeyEntry> = [];
    let version = 0;
    for (const id of ['tn_flood', 'tn_quiet']) {
      const quota = { requestsPerSecond: 1000, concurrentJobs: 100, monthlyCpuSeconds: 1 };
      changes.push({ kind: 'tenant', id, name: id, plan: 'pro', quota, version: ++version });
      const key = generateKey();
      keys[id] = key.key;
      changes.push({
        kind: 'key',
        hash: key.hash,
        keyId: `key_${id}`,
        tenantId: id,
        prefix: key.prefix,
        status: 'active',
        version: ++version,
      });
    }
    await feed.publish(changes);
    const identity = new IdentityClient({ source: feed });
    await identity.start();
    const queue = new InProcessQueue({ maxDepth: 1000 });
    const quotas = new TenantQuotas({ workerSlots });
    // Admission's expected-wait check out of the way (a loaded machine makes conversions slow): only the lanes are under test.
    const api = createApi({
      queue,
      identity,
      quotas,
      authenticate: identityAuthentication({ identity, quotas }),
      logger: silentLogger(),
      maxExpectedWaitMs: 60_000,
    });
    const worker = new ResizeWorker({ queue, concurrency: 2 }).start();
    const server = await listen(api.app.fetch);
    open.push(queue, identity, quotas, api, worker, { close: () => server.close(0) });
    const post = (tenant: string) =>
      fetch(`${server.url}/v1/resize?width=600&deadlineMs=60000`, {
        method: 'POST',
        body: image,
        headers: { authorization: `Bearer ${keys[tenant]}`, 'content-type': 'image/jpeg' },
      });
    return { post, quotas, queue };
  }

  let image: Buffer;
  beforeAll(async () => {
    // Big enough that a conversion takes a while, so the flood's jobs pile up behind the workers.
    image = await sharp({
      create: { width: 1600, height: 1200, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } },
    })
      .jpeg()
      .toBuffer();
  });

  /** The flood sends `n` sync jobs at once; once they are all in, the quiet tenant sends one. Answers how many of the flood's were done by then. */
  async function floodThenOne(
    workerSlots: number,
    n: number,
  ): Promise<{ floodDoneBefore: number; quietStatus: number; queuedBehind: number }> {
    const { post, quotas, queue } = await serve(workerSlots);
    let floodDone = 0;
    const flood = Array.from({ length: n }, () =>
      post('tn_flood').then(async (r) => {
        await r.arrayBuffer();
        floodDone++;
        return r.status;
      }),
    );
    // Every flood job has passed its quota and is in the queue (two of them running) or waiting in its lane.
    await vi.waitFor(
      async () => {
        const { held, waiting, granted } = quotas.lanes.stats();
        if (granted + waiting < n || (await queue.depth()) < held - 2) throw new Error('the flood is not all in yet');
      },
      { timeout: 60_000, interval: 20 },
    );
    const queuedBehind = await queue.depth();
    const quiet = await post('tn_quiet');
    await quiet.arrayBuffer();
    const floodDoneBefore = floodDone;
    expect(await Promise.all(flood)).toEqual(Array(n).fill(200));
    return { floodDoneBefore, quietStatus: quiet.status, queuedBehind };
  }

  it("keeps a flooding tenant's jobs, within its quota, from standing in the queue ahead of another tenant's", {
    timeout: 120_000,
  }, async () => {
    const n = 16;
    const { floodDoneBefore, quietStatus, queuedBehind } = await floodThenOne(2, n);
    expect(quietStatus).toBe(200);
    // The flood's jobs in the queue never exceed its share of the two slots: the rest waited in its lane.
    expect(queuedBehind).toBeLessThanOrEqual(2);
    // The quiet job waited for at most the conversions already running, not for the flood.
    expect(floodDoneBefore).toBeLessThanOrEqual(3);
  });
});
