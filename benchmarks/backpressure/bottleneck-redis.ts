/**
 * Checks bottleneck's Redis clustering against the Redis on this machine: basic
 * scheduling, then recovery after the limiter's keys disappear (a FLUSHALL, a restart
 * without persistence, an eviction, a failover to a replica that lacks them). bottleneck
 * recognises the "settings key not found" reply of its own Lua script by exact message;
 * Redis 7 prefixes script errors with "ERR ", so the check no longer matches.
 */
import { startRedis } from '@ballast/test/redis';
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';

export interface ClusteringCheck {
  redisVersion: string;
  scheduleWorks: boolean;
  /** Outcome of the next job after the limiter's keys were flushed. */
  afterKeyLoss: string;
  /** Outcome of a job scheduled after that. */
  afterKeyLossAgain: string;
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref()),
  ]);
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await within(promise, 5000);
    return 'ok';
  } catch (error) {
    return `error: ${(error as Error).message}`;
  }
}

export async function bottleneckRedisCheck(): Promise<ClusteringCheck> {
  const redis = await startRedis();
  const admin = new Redis(redis.port, redis.host);
  const limiter = new Bottleneck({
    id: 'ballast-check',
    datastore: 'ioredis',
    clearDatastore: true,
    clientOptions: { host: redis.host, port: redis.port },
    maxConcurrent: 2,
    minTime: 5,
  });
  limiter.on('error', () => undefined);
  try {
    const info = await admin.info('server');
    const redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    await within(limiter.ready(), 5000);
    const scheduleWorks = (await outcome(Promise.all(Array.from({ length: 20 }, (_, i) => limiter.schedule(async () => i))))) === 'ok';
    await admin.flushall();
    const afterKeyLoss = await outcome(limiter.schedule(async () => 1));
    const afterKeyLossAgain = await outcome(limiter.schedule(async () => 2));
    return { redisVersion, scheduleWorks, afterKeyLoss, afterKeyLossAgain };
  } finally {
    await limiter.disconnect(false).catch(() => undefined);
    admin.disconnect();
    await redis.stop();
  }
}
