/**
 * A job's result stored across a queue failover, on a real Redis primary and replica:
 * while the replica does not acknowledge (stopped with SIGSTOP), the finish's `WAIT` times
 * out and the queue is unavailable — what a worker sees for the seconds of a Redis
 * failover. The worker stores the result again until the replica is back, instead of
 * leaving the job to be reclaimed and converted a second time after its lease.
 */
import { RedisQueue } from '@ballast/app-queue';
import { type RedisTopology, startRedisTopology } from '@ballast/test/redis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResizeWorker } from './index.ts';

let topology: RedisTopology;
let queue: RedisQueue;

beforeAll(async () => {
  topology = await startRedisTopology({ replicas: 1, sentinels: 0, minReplicasToWrite: 0 });
  queue = new RedisQueue({ connection: topology.primary.url, minReplicas: 1, replicationTimeoutMs: 200, leaseMs: 60_000 });
}, 60_000);

afterAll(async () => {
  await queue?.close();
  await topology?.stop();
});

describe('a worker finishing a job while the queue is unavailable', () => {
  it('stores the result once the queue is back: converted once, no error', { timeout: 60_000 }, async () => {
    const replica = topology.replicas[0] as RedisTopology['replicas'][number];
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#36a' } })
      .jpeg()
      .toBuffer();
    const id = await queue.enqueue({
      id: 'failover-1',
      data: jpeg,
      params: { resize: { width: 16, format: 'png' } },
      deadlineAt: Date.now() + 60_000,
    });
    let stalled = false;
    let resume: ReturnType<typeof setTimeout> | undefined;
    const worker = new ResizeWorker({
      queue,
      concurrency: 1,
      // The replica stops acknowledging while the job converts: its finish meets an unavailable queue.
      beforeConvert: () => {
        process.kill(replica.pid, 'SIGSTOP');
        stalled = true;
        resume = setTimeout(() => process.kill(replica.pid, 'SIGCONT'), 1500);
      },
    });
    const errors: unknown[] = [];
    worker.events.on('error', ({ error }) => errors.push(error));
    try {
      worker.start();
      const result = await queue.wait(id, AbortSignal.timeout(30_000));
      expect(stalled).toBe(true);
      expect(result.status).toBe('done');
    } finally {
      // Resumed now, and the timer cleared: the test can end (and the replica be stopped)
      // within the 1.5 s, when the result is seen on the primary before it replicates, and
      // a late SIGCONT to an exited process throws ESRCH outside any test.
      clearTimeout(resume);
      if (stalled) process.kill(replica.pid, 'SIGCONT');
      await worker.close(); // the conversion in progress ends first
    }
    expect(worker.stats().done).toBe(1);
    expect(errors).toEqual([]);
  });
});
