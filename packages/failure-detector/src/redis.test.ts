import { type RedisServer, startRedis } from '@ballast/test/redis';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FailureDetectorError } from './errors.ts';
import { FixedTimeoutDetector } from './fixed-timeout.ts';
import { HeartbeatMonitor, type JoinEvent } from './monitor.ts';
import { receiveRedisHeartbeats, redisHeartbeatSender } from './redis.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function client(): Redis {
  const c = new Redis(redis.port, redis.host, { maxRetriesPerRequest: 1, lazyConnect: false });
  cleanup.push(() => c.disconnect());
  return c;
}

function waitFor(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      if (predicate()) resolve();
      else if (Date.now() - started > timeoutMs) reject(new Error('condition not met in time'));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

describe('Redis pub/sub transport against a real redis-server', () => {
  it('carries heartbeats from senders to the monitor', async () => {
    const monitor = new HeartbeatMonitor({ detector: () => new FixedTimeoutDetector({ timeoutMs: 5000 }) });
    cleanup.push(() => monitor.close());
    const joined: JoinEvent[] = [];
    monitor.on('join', (event) => joined.push(event));
    const receiver = await receiveRedisHeartbeats(monitor, { redis: client(), channel: 'test:hb' });
    cleanup.push(() => receiver.close());

    const publisher = client();
    const senders = ['worker-1', 'worker-2'].map((id) =>
      redisHeartbeatSender({ redis: publisher, channel: 'test:hb', id, intervalMs: 20 }),
    );
    cleanup.push(() => Promise.all(senders.map((s) => s.close())));
    await waitFor(() => receiver.stats().received >= 8);

    expect(joined.map((e) => e.id).sort()).toEqual(['worker-1', 'worker-2']);
    expect(monitor.nodes('alive').sort()).toEqual(['worker-1', 'worker-2']);
    expect(receiver.stats().malformed).toBe(0);
    for (const sender of senders) expect(sender.stats().sent).toBeGreaterThanOrEqual(1);
  });

  it('ignores malformed messages and other channels, and stops after close()', async () => {
    const monitor = new HeartbeatMonitor();
    cleanup.push(() => monitor.close());
    const subscriber = client();
    const receiver = await receiveRedisHeartbeats(monitor, { redis: subscriber });
    expect(receiver.channel).toBe('ballast:heartbeats');
    const publisher = client();
    await publisher.publish('ballast:heartbeats', 'not json');
    await publisher.publish('ballast:heartbeats', '{"seq":1}');
    await publisher.publish('elsewhere', '{"id":"x"}');
    await publisher.publish('ballast:heartbeats', '{"id":"api-9","seq":1}');
    await waitFor(() => receiver.stats().received === 1);
    expect(receiver.stats()).toEqual({ received: 1, malformed: 2 });
    expect(monitor.nodes()).toEqual(['api-9']);

    await receiver.close();
    await receiver.close();
    expect(subscriber.listenerCount('message')).toBe(0);
    // Unsubscribed: the connection is usable for ordinary commands again.
    expect(await subscriber.ping()).toBe('PONG');
    // A second receiver, still subscribed, shows when a later heartbeat has been delivered.
    const witness = new HeartbeatMonitor();
    cleanup.push(() => witness.close());
    const witnessReceiver = await receiveRedisHeartbeats(witness, { redis: client() });
    cleanup.push(() => witnessReceiver.close());
    await publisher.publish('ballast:heartbeats', '{"id":"api-10"}');
    await waitFor(() => witnessReceiver.stats().received === 1);
    expect(monitor.nodes()).toEqual(['api-9']);
    expect(receiver.stats().received).toBe(1);
  });

  it('reports a heartbeat that cannot be published', async () => {
    const publisher = new Redis(redis.port, redis.host, { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true });
    cleanup.push(() => publisher.disconnect());
    const sender = redisHeartbeatSender({ redis: publisher, id: 'worker-1', intervalMs: 1000 });
    cleanup.push(() => sender.close());
    const error = await new Promise<FailureDetectorError>((resolve) => sender.on('fail', (event) => resolve(event.error)));
    expect(error.code).toBe('ERR_BALLAST_HEARTBEAT_FAILED');
    expect(error.message).toMatch(/^heartbeat 0 of worker-1 failed: /);
  });

  it('rejects a client without the needed methods', async () => {
    const monitor = new HeartbeatMonitor();
    cleanup.push(() => monitor.close());
    await expect(receiveRedisHeartbeats(monitor, { redis: {} as never })).rejects.toThrow('redis.subscribe must be a function');
    expect(() => redisHeartbeatSender({ redis: {} as never, id: 'a' })).toThrow('redis.publish must be a function');
  });
});
