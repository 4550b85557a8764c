import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive as alive } from './process.ts';
import {
  command,
  findBinary,
  RedisNotInstalledError,
  type RedisServer,
  type RedisTopology,
  startRedis,
  startRedisTopology,
} from './redis.ts';

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

describe('when the test process dies', () => {
  it('stops its redis-server even when killed with SIGKILL (no exit handler runs)', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/start-redis-and-wait.ts', import.meta.url));
    const child = spawn(process.execPath, ['--conditions=@ballast/source', fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0] as string);
      });
      child.once('exit', (code) => reject(new Error(`fixture exited early with code ${code}`)));
    });
    const { pid, port } = JSON.parse(line) as { pid: number; port: number };
    expect(await command(port, ['PING'])).toBe('PONG');
    child.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  });
});

describe('findBinary', () => {
  it('says exactly how to install Redis when redis-server is missing', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(() => findBinary('redis-server')).toThrow(RedisNotInstalledError);
      expect(() => findBinary('redis-server')).toThrow(/apt-get install -y redis-server redis-sentinel/);
    } finally {
      process.env.PATH = path;
    }
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
