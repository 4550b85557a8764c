/**
 * The system under failure, with real processes: a worker process killed mid-job,
 * and the Redis primary killed under load with Sentinel promoting a replica.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createApi } from '@ballast/app-api';
import { RedisQueue } from '@ballast/app-queue';
import { silentLogger } from '@ballast/app-shared';
import { type RunningSystem, startSystem } from '@ballast/app-system';
import { type RedisServer, type RedisTopology, startRedis, startRedisTopology } from '@ballast/test/redis';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, resize, smallJpeg } from './helpers.ts';

let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await smallJpeg(160, 120);
});

const quiet = { logger: silentLogger() };

describe('a worker killed mid-job', () => {
  let redis: RedisServer;
  let system: RunningSystem | undefined;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    child?.kill('SIGKILL');
    await system?.close();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('has its job reclaimed and completed by another worker', async () => {
    // A real worker process that takes the job and holds it.
    child = spawn(process.execPath, ['--conditions=@ballast/source', fileURLToPath(new URL('./slow-worker.fixture.ts', import.meta.url))], {
      env: { ...process.env, BALLAST_REDIS_URL: redis.url, BALLAST_REDIS_MIN_REPLICAS: '0', BALLAST_QUEUE_LEASE_MS: '600' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout?.on('data', (chunk) => {
      output += String(chunk);
    });
    await eventually('the worker process to start', 15_000, async () => (output.includes('ready') ? true : undefined));

    // The system, with no worker of its own yet.
    system = await startSystem({
      ...quiet,
      workers: 0,
      queue: () => new RedisQueue({ connection: redis.url, minReplicas: 0, leaseMs: 600, pollMs: 100 }),
    });
    const answer = resize(system.url, 'width=40&format=png&deadlineMs=30000', jpeg);
    const claimed = await eventually('the worker process to take the job', 10_000, async () => output.match(/claimed (\S+)/)?.[1]);
    child.kill('SIGKILL'); // mid-job: it never stores a result nor acknowledges
    await new Promise((r) => child?.once('exit', r));
    const survivor = system.addWorker();

    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.headers.get('x-job-id')).toBe(claimed);
    expect(res.headers.get('x-worker')).toMatch(new RegExp(`^${survivor.name}-`));
    expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width).toBe(40);
  });
});

describe('the Redis primary killed', () => {
  let topology: RedisTopology;
  let system: RunningSystem;
  // The worker holds every job it takes until released: jobs acknowledged before the crash
  // are then provably in flight at it (taken and unfinished, or waiting in the stream).
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const held = new Set<string>();
  beforeAll(async () => {
    topology = await startRedisTopology({ replicas: 2, sentinels: 3, downAfterMs: 1000, failoverTimeoutMs: 5000 });
    const connection = { sentinels: topology.sentinelAddresses, name: topology.masterName };
    system = await startSystem({
      ...quiet,
      workers: 1,
      workerConcurrency: 2,
      worker: {
        beforeConvert: async (job) => {
          held.add(job.id);
          await gate;
        },
      },
      queue: () => new RedisQueue({ connection, minReplicas: 1, replicationTimeoutMs: 1000, leaseMs: 2000, pollMs: 200 }),
    });
  });
  afterAll(async () => {
    release();
    await system?.close();
    await topology?.stop();
  });

  it('keeps serving after Sentinel fails over, and loses no acknowledged job, not even those in flight at the crash', {
    timeout: 90_000,
  }, async () => {
    const acknowledged: string[] = [];
    const refusals: string[] = []; // what the client saw instead of a 202, for the failure message
    const submit = async (): Promise<void> => {
      try {
        const res = await resize(system.url, 'width=24&mode=async&deadlineMs=60000', jpeg, { signal: AbortSignal.timeout(15_000) });
        if (res.status === 202) acknowledged.push(((await res.json()) as { id: string }).id);
        else refusals.push(`${res.status} ${await res.text()}`); // refused during the failover: never acknowledged, a client retries it
      } catch (error) {
        refusals.push(String(error)); // no answer at all during the failover: never acknowledged either
      }
    };
    const status = async (id: string): Promise<number> => {
      const res = await fetch(`${system.url}/v1/jobs/${id}`);
      await res.arrayBuffer();
      return res.status;
    };
    for (let i = 0; i < 10; i++) await submit();
    expect(acknowledged).toHaveLength(10);

    // At the crash: two jobs taken by the worker and mid-job, eight waiting, none finished.
    await eventually('the worker to take two jobs', 10_000, async () => (held.size === 2 ? true : undefined));
    expect(acknowledged).toEqual(expect.arrayContaining([...held]));
    expect(await Promise.all(acknowledged.map(status))).toEqual(acknowledged.map(() => 202));

    const before = await topology.currentPrimary();
    await topology.primary.crash();
    const crashedAt = Date.now();
    // Keep submitting through the failover until five more jobs have been acknowledged.
    const beforeCount = acknowledged.length;
    while (acknowledged.length < beforeCount + 5 && Date.now() - crashedAt < 45_000) {
      await submit();
      await new Promise((r) => setTimeout(r, 100)); // pace the client: a bounded loop, not a clock
    }
    const after = await topology.currentPrimary();
    expect(after.port).not.toBe(before.port);
    expect(acknowledged.length, `last refusals: ${refusals.slice(-3).join(' | ')}`).toBe(beforeCount + 5);

    // Every acknowledged job completes, on the new primary: the two taken mid-job, the eight
    // waiting at the crash and the five accepted during the failover.
    release();
    for (const id of acknowledged) {
      const res = await eventually(
        `job ${id}`,
        30_000,
        async () => {
          const r = await fetch(`${system.url}/v1/jobs/${id}`);
          if (r.status === 200) return r;
          await r.arrayBuffer();
          return undefined;
        },
        200,
      );
      expect((await sharp(Buffer.from(await res.arrayBuffer())).metadata()).width).toBe(24);
    }
  });
});

describe('an API server shut down under load', () => {
  it('drains out of the gateway’s rotation before it closes: no request fails', { timeout: 30_000 }, async () => {
    const system = await startSystem({
      ...quiet,
      gateway: { healthIntervalMs: 50, acceptablePauseMs: 100, phiThreshold: 3 },
    });
    try {
      const statuses = new Map<string, number>();
      const served = new Map<string, number>(); // answers by API server
      let answered = 0;
      let stop = false;
      const client = async (): Promise<void> => {
        while (!stop) {
          const res = await resize(system.url, 'width=8', jpeg).catch((e: unknown) => String(e));
          const key = typeof res === 'string' ? res : `${res.status}`;
          if (typeof res !== 'string') {
            const upstream = res.headers.get('x-upstream') ?? 'none';
            served.set(upstream, (served.get(upstream) ?? 0) + 1);
            await res.arrayBuffer();
          }
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          answered++;
        }
      };
      const clients = Array.from({ length: 4 }, client);
      // Under load, with api-2 in the rotation: every server has answered a few requests.
      await eventually('every API server to serve', 10_000, async () =>
        ['api-1', 'api-2', 'api-3'].every((id) => (served.get(id) ?? 0) >= 3) ? true : undefined,
      );
      const leaving = system.apis[1] as (typeof system.apis)[number];
      leaving.api.drain();
      const health = await fetch(`${leaving.server.url}/healthz`);
      expect([health.status, health.headers.get('connection')]).toEqual([503, 'close']);
      await eventually('the gateway to take api-2 out', 5000, async () =>
        system.gateway.balancer.stats().endpoints.find((e) => e.id === 'api-2')?.state === 'down' ? true : undefined,
      );
      await leaving.server.close();
      const closedAt = answered;
      await eventually('twenty more answers after api-2 closed', 10_000, async () => (answered >= closedAt + 20 ? true : undefined));
      stop = true;
      await Promise.all(clients);
      expect(Object.fromEntries(statuses)).toEqual({ '200': answered });
    } finally {
      await system.close();
    }
  });
});

describe('the queue unreachable', () => {
  it('makes the API not ready, and ready again once Redis is back', async () => {
    const redis = await startRedis();
    const queue = new RedisQueue({ connection: { host: redis.host, port: redis.port, retryStrategy: () => 50 }, minReplicas: 0 });
    const api = createApi({ queue, logger: silentLogger() });
    try {
      expect((await api.app.request('/readyz')).status).toBe(200);
      await redis.crash();
      const down = await api.app.request('/readyz');
      expect(down.status).toBe(503);
      expect(await down.json()).toMatchObject({ ready: false, queue: 'redis' });
      await redis.restart();
      await eventually('the API to be ready again', 10_000, async () =>
        (await api.app.request('/readyz')).status === 200 ? true : undefined,
      );
    } finally {
      await api.close();
      await queue.close();
      await redis.stop();
    }
  });
});
