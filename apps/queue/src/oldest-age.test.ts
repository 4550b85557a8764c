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
/** Time between the two jobs' enqueues: longer than two age readings take on a loaded machine. */
const GAP_MS = 1000;
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
    await sleep(GAP_MS);
    await q.enqueue({ data: Buffer.from('b'), params: {}, deadlineAt: Date.now() + 60_000 });
    const first = (await q.oldestWaitingAgeMs?.()) ?? -1;
    const firstRead = Date.now();
    expect(first).toBeGreaterThanOrEqual(GAP_MS - 20);
    const lease = await q.consumer('c1').next();
    expect(lease.job.data.toString()).toBe('a');
    // 'a' is in progress, no longer waiting: the oldest waiting is 'b', enqueued GAP_MS later.
    // Were it still 'a', its age would have grown by at least the time between the readings.
    const secondAsked = Date.now();
    const second = (await q.oldestWaitingAgeMs?.()) ?? -1;
    expect(second).toBeLessThan(first + (secondAsked - firstRead));
    await lease.complete(Buffer.from('x'), {});
    const next = await q.consumer('c1').next();
    expect(await q.oldestWaitingAgeMs?.()).toBe(0);
    await next.complete(Buffer.from('y'), {});
  });
});
