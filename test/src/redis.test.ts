import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command, type RedisServer, type RedisTopology, startRedis, startRedisTopology } from './redis.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startRedis', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis.stop());

  it('runs a real redis-server on a loopback port', async () => {
    expect(redis.host).toBe('127.0.0.1');
    const client = new Redis(redis.port, redis.host, { lazyConnect: true });
    await client.connect();
    await client.set('ballast:test', 'value');
    expect(await client.get('ballast:test')).toBe('value');
    const info = await client.info('server');
    expect(info).toMatch(/redis_version:/);
    client.disconnect();
  });

  it('survives a crash and a restart on the same port', async () => {
    const pid = redis.pid;
    await redis.crash();
    expect(redis.running).toBe(false);
    expect(alive(pid)).toBe(false);
    await expect(command(redis.port, ['PING'])).rejects.toThrow();
    await redis.restart();
    expect(await command(redis.port, ['PING'])).toBe('PONG');
  });

  it('leaves no process behind after stop', async () => {
    const other = await startRedis();
    const pid = other.pid;
    expect(alive(pid)).toBe(true);
    await other.stop();
    expect(alive(pid)).toBe(false);
  });
});

describe('startRedisTopology', () => {
  let topology: RedisTopology;
  beforeAll(async () => {
    topology = await startRedisTopology({ replicas: 2, sentinels: 3 });
  });
  afterAll(() => topology?.stop());

  it('replicates writes to every replica', async () => {
    await command(topology.primary.port, ['SET', 'k', 'v']);
    const synced = await command(topology.primary.port, ['WAIT', '2', '2000']);
    expect(Number(synced)).toBe(2);
    for (const replica of topology.replicas) expect(await command(replica.port, ['GET', 'k'])).toBe('v');
  });

  it('promotes a replica when the primary crashes', async () => {
    expect((await topology.currentPrimary()).port).toBe(topology.primary.port);
    await topology.primary.crash();
    const replicaPorts = topology.replicas.map((r) => r.port);
    const deadline = Date.now() + 30_000;
    let promoted: number | undefined;
    while (Date.now() < deadline) {
      const { port } = await topology.currentPrimary();
      if (replicaPorts.includes(port)) {
        promoted = port;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(promoted).toBeDefined();
    const role = await command(promoted as number, ['ROLE']);
    expect(role.split('\n')[0]).toBe('master');
  }, 40_000);
});
