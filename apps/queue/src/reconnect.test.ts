import { type RedisServer, startRedis, startRedisTopology } from '@ballast/test/redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { reconnectWhenEnded } from './reconnect.ts';
import { RedisQueue } from './redis.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

/** Resolves once `client` is ready again, or rejects after `ms`. */
function readyWithin(client: Redis, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still ${client.status} after ${ms} ms`)), ms);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Ends `client` the way an interrupted Sentinel lookup does: status `end`, no retry of its own. */
function endUnasked(client: Redis): Promise<void> {
  return new Promise((resolve) => {
    client.once('end', () => resolve());
    client.disconnect();
  });
}

describe('reconnectWhenEnded', () => {
  it('brings back a connection that ended while its owner is open, and leaves a closed owner’s alone', async () => {
    const client = new Redis(redis.url, { lazyConnect: true });
    client.on('error', () => {});
    await client.connect();
    let open = true;
    const cancel = reconnectWhenEnded(client, () => open);
    await endUnasked(client);
    await readyWithin(client, 10_000);
    expect(await client.ping()).toBe('PONG');

    open = false;
    await endUnasked(client);
    await new Promise((r) => setTimeout(r, 200));
    expect(client.status).toBe('end');
    cancel();
  });

  it('reconnects a queue handle’s connections while the handle is open, and not after it closed', async () => {
    const queue = new RedisQueue({ connection: redis.url, minReplicas: 0, prefix: 'reconnect:', member: 'm1', pollMs: 60_000 });
    const connection = queue._duplicate();
    await readyWithin(connection, 10_000);
    await endUnasked(connection);
    await readyWithin(connection, 10_000);
    expect(await connection.ping()).toBe('PONG');
    const id = await queue.enqueue({ data: Buffer.from('a'), params: {}, deadlineAt: Date.now() + 60_000 });
    expect(typeof id).toBe('string');

    await queue.close();
    await endUnasked(connection);
    await new Promise((r) => setTimeout(r, 200));
    expect(connection.status).toBe('end');
  });
});

describe('quietFailoverDetector', () => {
  it('leaves no connection of ioredis’s failover detector without an error listener: a Sentinel that is down prints nothing', async () => {
    const topology = await startRedisTopology({ replicas: 0, sentinels: 2, minReplicasToWrite: 0 });
    await topology.sentinels[0]?.crash();
    const printed = vi.spyOn(console, 'error');
    const queue = new RedisQueue({
      connection: { sentinels: topology.sentinelAddresses, name: topology.masterName },
      minReplicas: 0,
      prefix: 'quiet:',
      member: 'm2',
      pollMs: 60_000,
    });
    try {
      const connection = queue._duplicate();
      // The detector's connection to the stopped Sentinel failed and waits to try again.
      const failed = new Promise((resolve) => connection.once('sentinelReconnecting', resolve));
      await queue.enqueue({ data: Buffer.from('a'), params: {}, deadlineAt: Date.now() + 60_000 });
      await failed;
      expect(printed.mock.calls.map((call) => String(call[0])).filter((line) => line.includes('Unhandled error event'))).toEqual([]);
    } finally {
      await queue.close();
      await topology.stop();
    }
  });
});
