/**
 * Enqueue across a queue failover, on a real Redis primary and replica: while the
 * replica does not acknowledge (stopped with SIGSTOP), every enqueue's `WAIT` times out
 * and the queue is unavailable — what a client sees for the seconds of a Redis failover.
 * The API retries the enqueue (same job id) until the replica is back, within the
 * request's deadline, instead of answering 503.
 */
import { RedisQueue } from '@ballast/app-queue';
import { silentLogger } from '@ballast/app-shared';
import { type RedisTopology, startRedisTopology } from '@ballast/test/redis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Api, createApi } from './index.ts';

let topology: RedisTopology;
let queue: RedisQueue;
let jpeg: Buffer;
const apis: Api[] = [];

beforeAll(async () => {
  topology = await startRedisTopology({ replicas: 1, sentinels: 0, minReplicasToWrite: 0 });
  queue = new RedisQueue({ connection: topology.primary.url, minReplicas: 1, replicationTimeoutMs: 200, heartbeats: false });
  jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#3a6' } })
    .jpeg()
    .toBuffer();
}, 60_000);

afterAll(async () => {
  for (const api of apis) await api.close();
  await queue?.close();
  await topology?.stop();
});

function post(enqueueRetryMs: number, query: string, path = '/v1/resize'): Promise<Response> {
  const api = createApi({ queue, logger: silentLogger(), enqueueRetryMs, fairShare: false });
  apis.push(api);
  return Promise.resolve(
    api.app.request(`${path}?${query}`, {
      method: 'POST',
      body: jpeg,
      headers: { 'content-type': 'image/jpeg' },
      duplex: 'half',
    } as RequestInit),
  );
}

/** Stops the replica (its acknowledgements stop) until the returned function resumes it. */
function stallReplica(): () => void {
  const replica = topology.replicas[0] as RedisTopology['replicas'][number];
  process.kill(replica.pid, 'SIGSTOP');
  let resumed = false;
  return () => {
    if (!resumed) process.kill(replica.pid, 'SIGCONT');
    resumed = true;
  };
}

describe('enqueue while the queue is unavailable', () => {
  it('is retried until the queue is back, and the job is acknowledged once', { timeout: 60_000 }, async () => {
    const resume = stallReplica();
    try {
      const answer = post(30_000, 'width=16&mode=async&deadlineMs=60000');
      // Several WAITs time out meanwhile (200 ms each): the first attempts are refused.
      await new Promise((r) => setTimeout(r, 1500));
      resume();
      const res = await answer;
      expect(res.status, await res.clone().text()).toBe(202);
      const { id } = (await res.json()) as { id: string };
      expect((await queue.result(id))?.status).toBe('pending');
      expect(await queue.depth()).toBe(1);
    } finally {
      resume();
    }
  });

  it('is retried for every job of a rendition set too', { timeout: 60_000 }, async () => {
    const before = await queue.depth();
    const resume = stallReplica();
    try {
      const answer = post(30_000, 'widths=16,24,32&formats=jpeg&mode=async&deadlineMs=60000', '/v1/renditions');
      await new Promise((r) => setTimeout(r, 1500));
      resume();
      const res = await answer;
      expect(res.status, await res.clone().text()).toBe(202);
      expect(await queue.depth()).toBe(before + 3);
    } finally {
      resume();
    }
  });

  it.each([
    // Retries turned off: refused at once.
    { what: 'at once with retries turned off (enqueueRetryMs: 0)', retryMs: 0, query: 'width=16&mode=async&deadlineMs=60000' },
    // 30 s of retries allowed, but the request's own deadline is 2 s: refused, not left hanging.
    { what: 'within the request deadline, leaving the job time to run', retryMs: 30_000, query: 'width=16&deadlineMs=2000' },
  ])('gives up $what: 503', { timeout: 60_000 }, async ({ retryMs, query }) => {
    const resume = stallReplica();
    try {
      const res = await post(retryMs, query);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_BALLAST_QUEUE_UNAVAILABLE');
    } finally {
      resume();
    }
  });
});
