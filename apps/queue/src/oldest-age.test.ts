import { type RedisServer, startRedis } from '@ballast/test/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InProcessQueue, type JobQueue, RedisQueue } from './index.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let prefixes = 0;

describe.each([
  ['in-process', (): JobQueue => new InProcessQueue()],
  ['redis', (): JobQueue => new RedisQueue({ connection: redis.url, minReplicas: 0, prefix: `age${++prefixes}:`, pollMs: 50 })],
])('%s queue: age of the oldest waiting job', (_name, make) => {
  const open: JobQueue[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((q) => q.close()));
  });

  it('is 0 with nothing waiting, grows while a job waits, and moves to the next job once a worker takes it', async () => {
    const q = make();
    open.push(q);
    expect(await q.oldestWaitingAgeMs?.()).toBe(0);
    await q.enqueue({ data: Buffer.from('a'), params: {}, deadlineAt: Date.now() + 60_000 });
    await sleep(120);
    await q.enqueue({ data: Buffer.from('b'), params: {}, deadlineAt: Date.now() + 60_000 });
    const first = (await q.oldestWaitingAgeMs?.()) ?? -1;
    expect(first).toBeGreaterThanOrEqual(100);
    const lease = await q.consumer('c1').next();
    expect(lease.job.data.toString()).toBe('a');
    // 'a' is in progress, no longer waiting: the oldest waiting is 'b', enqueued later.
    const second = (await q.oldestWaitingAgeMs?.()) ?? -1;
    expect(second).toBeLessThan(first);
    await lease.complete(Buffer.from('x'), {});
    const next = await q.consumer('c1').next();
    expect(await q.oldestWaitingAgeMs?.()).toBe(0);
    await next.complete(Buffer.from('y'), {});
  });
});
