import { InvalidOptionError } from '@ballast/common';
import { InProcessQueue } from './in-process.ts';
import { RedisQueue, type RedisQueueOptions } from './redis.ts';
import type { JobQueue, QueueOptions } from './types.ts';

/**
 * Builds the queue the environment asks for:
 *
 * | Variable | Meaning |
 * |---|---|
 * | `BALLAST_REDIS_SENTINELS` | `host:port,host:port,…` of Sentinels: Redis mode following the primary they elect |
 * | `BALLAST_REDIS_MASTER` | name the Sentinels monitor (default `ballast`) |
 * | `BALLAST_REDIS_URL` | `redis://host:port` of a single primary (when no Sentinels are given) |
 * | `BALLAST_REDIS_CLUSTER` | `host:port,…` of Redis Cluster nodes: the queue sharded over the cluster |
 * | `BALLAST_REDIS_SHARDS` | shards (streams) on the cluster (default 4) |
 * | `BALLAST_REDIS_MIN_REPLICAS` | replicas that must confirm each write (default 1; 0 for a lone server) |
 * | `BALLAST_QUEUE_MAX_DEPTH` | jobs waiting or in progress before enqueue is refused (default 1000) |
 * | `BALLAST_QUEUE_LEASE_MS` | lease before a silent worker's job is reclaimed (default 10000) |
 * | `BALLAST_QUEUE_HEARTBEAT_MS` | mean time between heartbeats of each process (default 250) |
 * | `BALLAST_QUEUE_HEARTBEAT_PAUSE_MS` | silence tolerated beyond it before a process is suspected (default 1000) |
 *
 * With none of the Redis variables set, the in-process queue: the embedded default.
 */
export function queueFromEnv(env: NodeJS.ProcessEnv = process.env, overrides: QueueFromEnvOptions = {}): JobQueue {
  const { member, ...rest } = overrides;
  const options: QueueOptions = {
    maxDepth: optionalInt(env, 'BALLAST_QUEUE_MAX_DEPTH'),
    leaseMs: optionalInt(env, 'BALLAST_QUEUE_LEASE_MS'),
    ...rest,
  };
  const redis: RedisQueueOptions = {
    ...options,
    minReplicas: optionalInt(env, 'BALLAST_REDIS_MIN_REPLICAS'),
    heartbeatIntervalMs: optionalInt(env, 'BALLAST_QUEUE_HEARTBEAT_MS'),
    heartbeatPauseMs: optionalInt(env, 'BALLAST_QUEUE_HEARTBEAT_PAUSE_MS'),
    member,
  };
  if (env.BALLAST_REDIS_CLUSTER) {
    const nodes = parseAddresses(env.BALLAST_REDIS_CLUSTER, 'BALLAST_REDIS_CLUSTER');
    return new RedisQueue({ ...redis, cluster: { nodes, shards: optionalInt(env, 'BALLAST_REDIS_SHARDS') } });
  }
  if (env.BALLAST_REDIS_SENTINELS) {
    return new RedisQueue({
      ...redis,
      connection: { sentinels: parseAddresses(env.BALLAST_REDIS_SENTINELS), name: env.BALLAST_REDIS_MASTER || 'ballast' },
    });
  }
  if (env.BALLAST_REDIS_URL) return new RedisQueue({ ...redis, connection: env.BALLAST_REDIS_URL });
  return new InProcessQueue(options);
}

/** Options of {@link queueFromEnv} that the environment does not set. */
export interface QueueFromEnvOptions extends QueueOptions {
  /** This process's member name in the Redis queue (heartbeats, consumer names); ignored in process. */
  member?: string;
}

/** Parses `host:port,host:port`. */
export function parseAddresses(value: string, variable = 'BALLAST_REDIS_SENTINELS'): Array<{ host: string; port: number }> {
  return value.split(',').map((part) => {
    const [host, port] = part.trim().split(':');
    const n = Number(port);
    if (!host || !Number.isInteger(n) || n <= 0 || n > 65535) throw new InvalidOptionError(variable, 'host:port,…', value);
    return { host, port: n };
  });
}

function optionalInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new InvalidOptionError(name, 'an integer', raw);
  return n;
}
