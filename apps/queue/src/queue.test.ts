import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { isInvalidOptionError } from '@ballast/common';
import { eventually } from '@ballast/test/http';
import { command, type RedisServer, type RedisTopology, startRedis, startRedisTopology } from '@ballast/test/redis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  InProcessQueue,
  isQueueError,
  type JobQueue,
  type LedgerEntry,
  QueueFullError,
  type QueueOptions,
  QueueUnavailableError,
  RedisQueue,
} from './index.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

let prefixes = 0;
/**
 * The same suite runs on both queues. The in-process queue reads time through its
 * clock and timers, so it runs on fake time (`elapse` advances it); the Redis queue
 * talks to a real server, whose clock is real, so `elapse` waits.
 */
const factories: Array<[string, (options?: QueueOptions) => JobQueue, boolean]> = [
  ['in-process', (options) => new InProcessQueue(options), true],
  [
    'redis',
    (options) => new RedisQueue({ ...options, connection: redis.url, minReplicas: 0, prefix: `t${++prefixes}:`, pollMs: 50 }),
    false,
  ],
];

const future = (ms = 10_000): number => Date.now() + ms;
/**
 * Resolves once the queue's connection answers: `ping()` allows one second, which the
 * first connection of a loaded machine can take on its own.
 */
const connected = (q: RedisQueue): Promise<void> => eventually(() => q.ping(), 20_000);
const bytes = (text: string): Buffer => Buffer.from(text);

async function entries(q: JobQueue, from = 0, to = Date.now() + 60_000): Promise<LedgerEntry[]> {
  const out: LedgerEntry[] = [];
  for await (const entry of q.ledger(from, to)) out.push(entry);
  return out;
}

describe.each(factories)('%s queue', (_name, make, fake) => {
  const open: JobQueue[] = [];
  const queue = (options?: QueueOptions): JobQueue => {
    const q = make(options);
    open.push(q);
    return q;
  };
  const elapse = async (ms: number): Promise<void> => {
    if (fake) await vi.advanceTimersByTimeAsync(ms);
    else await new Promise((r) => setTimeout(r, ms));
  };
  beforeEach(() => {
    if (fake) vi.useFakeTimers();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((q) => q.close()));
    vi.useRealTimers();
  });

  it('delivers a job, stores the result, then acknowledges it', async () => {
    const q = queue();
    const id = await q.enqueue({ data: bytes('img'), params: { width: 10 }, deadlineAt: future() });
    expect(await q.result(id)).toEqual({ id, status: 'pending' });
    const waiting = q.wait(id);
    const lease = await q.consumer('c1').next();
    expect(lease.job).toMatchObject({ id, params: { width: 10 }, attempt: 1 });
    expect(lease.job.data.toString()).toBe('img');
    expect(await q.depth()).toBe(1);
    await lease.complete(bytes('out'), { cpuMs: 3 });
    const result = await waiting;
    expect(result.status).toBe('done');
    if (result.status === 'done') {
      expect(result.data.toString()).toBe('out');
      expect(result.meta).toEqual({ cpuMs: 3 });
    }
    expect(await q.depth()).toBe(0);
    expect((await q.result(id))?.status).toBe('done');
    expect(q.stats()).toMatchObject({ enqueued: 1, completed: 1 });
  });

  it('is FIFO', async () => {
    const q = queue();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await q.enqueue({ data: bytes(String(i)), params: {}, deadlineAt: future() }));
    const c = q.consumer('c1');
    const seen = [];
    for (let i = 0; i < 5; i++) {
      const lease = await c.next();
      seen.push(lease.job.id);
      await lease.complete(bytes(''), {});
    }
    expect(seen).toEqual(ids);
  });

  it('bounds its depth and admits again once jobs finish', async () => {
    const q = queue({ maxDepth: 2 });
    await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
    await q.enqueue({ data: bytes('b'), params: {}, deadlineAt: future() });
    const full = await q.enqueue({ data: bytes('c'), params: {}, deadlineAt: future() }).catch((e) => e);
    expect(full).toBeInstanceOf(QueueFullError);
    expect(isQueueError(full)).toBe(true);
    expect(full.code).toBe('ERR_BALLAST_QUEUE_FULL');
    const lease = await q.consumer('c1').next();
    await lease.complete(bytes(''), {});
    await expect(q.enqueue({ data: bytes('c'), params: {}, deadlineAt: future() })).resolves.toBeTypeOf('string');
    expect(q.stats().rejectedFull).toBe(1);
  });

  it('is idempotent per job id', async () => {
    const q = queue();
    await q.enqueue({ id: 'same', data: bytes('a'), params: {}, deadlineAt: future() });
    await q.enqueue({ id: 'same', data: bytes('a'), params: {}, deadlineAt: future() });
    expect(await q.depth()).toBe(1);
  });

  it('acknowledges an id enqueued again while the queue is full (idempotent), and refuses a new one', async () => {
    const q = queue({ maxDepth: 1 });
    await q.enqueue({ id: 'only', data: bytes('a'), params: {}, deadlineAt: future() });
    await expect(q.enqueue({ id: 'only', data: bytes('a'), params: {}, deadlineAt: future() })).resolves.toBe('only');
    await expect(q.enqueue({ id: 'other', data: bytes('b'), params: {}, deadlineAt: future() })).rejects.toBeInstanceOf(QueueFullError);
    expect(await q.depth()).toBe(1);
  });

  it('drops expired jobs instead of processing them', async () => {
    const q = queue();
    const stale = await q.enqueue({ data: bytes('old'), params: {}, deadlineAt: Date.now() + 20 });
    const live = await q.enqueue({ data: bytes('new'), params: {}, deadlineAt: future() });
    await elapse(40);
    const lease = await q.consumer('c1').next();
    expect(lease.job.id).toBe(live);
    expect((await q.wait(stale)).status).toBe('expired');
    expect(q.stats().expired).toBe(1);
  });

  it('cancels a job that has not started; consumers skip it', async () => {
    const q = queue();
    const a = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
    const b = await q.enqueue({ data: bytes('b'), params: {}, deadlineAt: future() });
    const waiting = q.wait(a);
    expect(await q.cancel(a)).toBe(true);
    expect(await q.cancel(a)).toBe(false);
    expect((await waiting).status).toBe('cancelled');
    const lease = await q.consumer('c1').next();
    expect(lease.job.id).toBe(b);
  });

  it('reclaims the job of a consumer that died mid-job and hands it to another', async () => {
    const q = queue({ leaseMs: 200 });
    const id = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
    const dying = q.consumer('dies');
    const first = await dying.next();
    expect(first.job.attempt).toBe(1);
    await dying.close(); // stops renewing its lease, never acknowledges
    const next = q.consumer('survivor').next();
    await elapse(400);
    const second = await next;
    expect(second.job.id).toBe(id);
    expect(second.job.attempt).toBe(2);
    await second.complete(bytes('ok'), {});
    expect((await q.wait(id)).status).toBe('done');
    expect(q.stats().reclaimed).toBe(1);
  });

  it('keeps a job with a live consumer for longer than the lease', async () => {
    const q = queue({ leaseMs: 400 });
    await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
    const lease = await q.consumer('slow').next();
    const other = new AbortController();
    const stolen = q.consumer('other').next(other.signal);
    await elapse(1200); // three leases long: renewals keep it
    other.abort(new Error('stop'));
    await expect(stolen).rejects.toThrow('stop');
    await lease.complete(bytes(''), {});
    expect(q.stats().reclaimed).toBe(0);
  });

  it('fails a job whose consumers keep dying, after maxAttempts deliveries', async () => {
    const q = queue({ leaseMs: 100, maxAttempts: 1 });
    const id = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
    const dying = q.consumer('dies');
    await dying.next();
    await dying.close();
    const ac = new AbortController();
    const next = q.consumer('next').next(ac.signal);
    const waiting = q.wait(id);
    await elapse(250);
    const result = await waiting;
    expect(result).toMatchObject({ status: 'failed', error: { code: 'ERR_BALLAST_QUEUE_TOO_MANY_ATTEMPTS' } });
    ac.abort(new Error('done'));
    await expect(next).rejects.toThrow('done');
  });

  it('drops a reclaimed job whose deadline passed while its consumer was dead', { timeout: 60_000 }, async () => {
    // The deadline leaves the job time to be delivered first, even on a busy machine (with
    // 150 ms it could expire before the first next(), which then waited for ever).
    const q = queue({ leaseMs: 6000 });
    const id = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: Date.now() + 5000 });
    const dying = q.consumer('dies');
    expect((await dying.next()).job.id).toBe(id);
    await dying.close();
    const live = await q.enqueue({ data: bytes('b'), params: {}, deadlineAt: future(60_000) });
    await elapse(6250); // the lease lapses after the deadline
    const next = q.consumer('survivor').next();
    await elapse(200);
    const lease = await next;
    expect(lease.job.id).toBe(live);
    expect((await q.wait(id)).status).toBe('expired');
  });

  it('reclaims a dead consumer’s job even behind many jobs held by live consumers', async () => {
    const q = queue({ leaseMs: 150 });
    const alive = q.consumer('alive');
    const held = [];
    for (let i = 0; i < 12; i++) {
      await q.enqueue({ data: bytes(String(i)), params: {}, deadlineAt: future() });
      held.push(await alive.next());
    }
    const id = await q.enqueue({ data: bytes('last'), params: {}, deadlineAt: future() });
    const dying = q.consumer('dies');
    expect((await dying.next()).job.id).toBe(id);
    await dying.close();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error('never reclaimed')), 3000);
    const next = q.consumer('survivor').next(ac.signal);
    await elapse(400);
    const again = await next;
    clearTimeout(timer);
    expect(again.job).toMatchObject({ id, attempt: 2 });
    for (const lease of held) await lease.complete(bytes(''), {});
  });

  it('does not count a released delivery as an attempt', async () => {
    const q = queue({ leaseMs: 150, maxAttempts: 1 });
    const id = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
    for (const name of ['a', 'b']) await (await q.consumer(name).next()).release();
    const lease = await q.consumer('c').next();
    expect(lease.job).toMatchObject({ id, attempt: 1 });
  });

  it('records failures as results', async () => {
    const q = queue();
    const id = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
    const lease = await q.consumer('c').next();
    await lease.fail({ code: 'BAD_IMAGE', message: 'not an image' });
    expect(await q.wait(id)).toEqual({ id, status: 'failed', error: { code: 'BAD_IMAGE', message: 'not an image' } });
  });

  it('release hands a job back for another consumer at once', async () => {
    const q = queue({ leaseMs: 150 });
    const id = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
    const lease = await q.consumer('a').next();
    await lease.release();
    const again = await q.consumer('b').next();
    expect(again.job.id).toBe(id);
  });

  it('wait and next honour their signals; unknown ids are reported', async () => {
    const q = queue();
    const id = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
    const ac = new AbortController();
    const waiting = q.wait(id, ac.signal);
    ac.abort(new Error('client went away'));
    await expect(waiting).rejects.toThrow('client went away');
    expect(await q.result('nope')).toBeUndefined();
    await expect(q.wait('nope')).rejects.toMatchObject({ code: 'ERR_BALLAST_QUEUE_UNKNOWN_JOB' });
    await expect(q.ping()).resolves.toBeUndefined();
  });

  it('records one ledger entry per finished job, with its tenant, outcome, worker, attempt and metering', async () => {
    const q = queue({ leaseMs: 100 });
    const from = Date.now();
    const done = await q.enqueue({ data: bytes('a'), params: { tenant: 't1' }, deadlineAt: future() });
    const failed = await q.enqueue({ data: bytes('b'), params: { tenant: 't2' }, deadlineAt: future() });
    const cancelled = await q.enqueue({ data: bytes('c'), params: { tenant: 't1' }, deadlineAt: future() });
    const expired = await q.enqueue({ data: bytes('d'), params: {}, deadlineAt: Date.now() + 20 });
    const c = q.consumer('w1');
    await (await c.next()).complete(bytes('out'), { cpuMs: 7, bytesOut: 3 });
    await (await c.next()).fail({ code: 'BAD_IMAGE', message: 'no' }, { cpuMs: 1 });
    expect(await q.cancel(cancelled)).toBe(true);
    await elapse(40);
    const ac = new AbortController();
    const idle = c.next(ac.signal).catch(() => undefined);
    await elapse(10);
    expect((await q.wait(expired)).status).toBe('expired');
    ac.abort(new Error('stop'));
    await idle;
    const ledger = await entries(q, from);
    expect(ledger.map((e) => [e.jobId, e.outcome])).toEqual([
      [done, 'done'],
      [failed, 'failed'],
      [cancelled, 'cancelled'],
      [expired, 'expired'],
    ]);
    expect(ledger[0]).toMatchObject({ tenant: 't1', worker: 'w1', attempt: 1, usage: { cpuMs: 7, bytesOut: 3 } });
    expect(ledger[1]).toMatchObject({ tenant: 't2', worker: 'w1', attempt: 1, errorCode: 'BAD_IMAGE', usage: { cpuMs: 1 } });
    expect(ledger[2]).toMatchObject({ tenant: 't1', attempt: 0 });
    expect(ledger[2]?.worker).toBeUndefined();
    expect(ledger[3]).toMatchObject({ worker: 'w1' });
    expect(ledger[3]?.tenant).toBeUndefined();
    for (const entry of ledger) expect(entry.finishedAt).toBeGreaterThanOrEqual(from - 1000);
    // Half-open ranges: [finishedAt, finishedAt + 1) holds the entry, [x, finishedAt) does not.
    const first = ledger[0] as LedgerEntry;
    expect((await entries(q, first.finishedAt, first.finishedAt + 1)).map((e) => e.jobId)).toContain(done);
    expect((await entries(q, 0, first.finishedAt)).map((e) => e.jobId)).not.toContain(done);
  });

  it('records a job run twice (at-least-once) in the ledger once, by the delivery that finished it', async () => {
    const q = queue({ leaseMs: 100 });
    const from = Date.now();
    const id = await q.enqueue({ data: bytes('a'), params: { tenant: 't' }, deadlineAt: future() });
    const slow = q.consumer('slow');
    const first = await slow.next();
    await slow.close(); // its lease lapses: the job goes to another consumer
    const next = q.consumer('fast').next();
    await elapse(250);
    const second = await next;
    expect(second.job.attempt).toBe(2);
    await second.complete(bytes('2'), { n: 2 });
    await first.complete(bytes('1'), { n: 1 }); // the first run finishes late: ignored
    const result = await q.wait(id);
    expect(result.status === 'done' && result.data.toString()).toBe('2');
    const ledger = (await entries(q, from)).filter((e) => e.jobId === id);
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({ outcome: 'done', worker: 'fast', attempt: 2, usage: { n: 2 } });
  });

  it('reports service times of finished jobs for every reader', async () => {
    const q = queue();
    expect(await q.serviceStats()).toMatchObject({ samples: 0, meanMs: 0, recentMs: [], updatedAt: 0 });
    const c = q.consumer('c');
    for (let i = 0; i < 3; i++) {
      await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
      const lease = await c.next();
      await elapse(20);
      await lease.complete(bytes(''), {});
    }
    const stats = await q.serviceStats();
    expect(stats.samples).toBe(3);
    expect(stats.recentMs).toHaveLength(3);
    expect(stats.meanMs).toBeGreaterThan(0);
    expect(stats.medianMs).toBeGreaterThan(0);
    expect(stats.p90Ms).toBeGreaterThanOrEqual(stats.medianMs);
    expect(stats.updatedAt).toBeGreaterThan(0);
    for (const ms of stats.recentMs) expect(ms).toBeGreaterThanOrEqual(fake ? 20 : 15);
  });

  it('refuses a malformed ledger range, naming the argument', async () => {
    const q = queue();
    await expect(entries(q, -1, 10)).rejects.toThrow('fromMs');
    await expect(entries(q, 0, Number.NaN)).rejects.toThrow('toMs');
    expect(await entries(q, 10, 5)).toEqual([]);
  });

  it('close() ends a waiting next() and refuses later ones', async () => {
    const q = queue();
    const c = q.consumer('c');
    const waiting = c.next().catch((error: unknown) => error);
    await elapse(20);
    await q.close();
    expect(await waiting).toMatchObject({ code: 'ERR_BALLAST_QUEUE_CLOSED' });
    await expect(c.next()).rejects.toMatchObject({ code: 'ERR_BALLAST_QUEUE_CLOSED' });
  });

  it('refuses a job whose deadline is not a number, naming it', async () => {
    const q = queue();
    const error = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: Number.NaN }).catch((e) => e);
    expect(isInvalidOptionError(error)).toBe(true);
    expect(String(error)).toContain('deadlineAt');
    expect(await q.depth()).toBe(0);
  });

  it('rejects invalid options naming the option', () => {
    let error: unknown;
    try {
      make({ maxDepth: 0 });
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error)).toBe(true);
    expect(String(error)).toContain('maxDepth');
  });
});

describe('in-process queue memory', () => {
  it('forgets the oldest results once they hold more than maxResultBytes', async () => {
    const q = new InProcessQueue({ maxResultBytes: 10 });
    try {
      const ids = [];
      const c = q.consumer('c');
      for (let i = 0; i < 3; i++) {
        const id = await q.enqueue({ data: bytes('in'), params: {}, deadlineAt: future() });
        const waiting = q.wait(id);
        await (await c.next()).complete(bytes(`out-${i}`), {}); // 5 bytes each
        expect((await waiting).status).toBe('done'); // a waiter always gets its result
        ids.push(id);
      }
      expect(await q.result(ids[0] as string)).toBeUndefined();
      expect((await q.result(ids[1] as string))?.status).toBe('done');
      expect((await q.result(ids[2] as string))?.status).toBe('done');
      await c.close();
    } finally {
      await q.close();
    }
  });
});

describe('in-process queue timers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  it('leaves no timer behind after close', async () => {
    vi.useFakeTimers();
    const q = new InProcessQueue({ leaseMs: 1000 });
    const c = q.consumer('c');
    await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: Date.now() + 5000 });
    await c.next();
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await c.close();
    await q.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reclaims after the lease under fake time', async () => {
    vi.useFakeTimers();
    const q = new InProcessQueue({ leaseMs: 1000 });
    await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: Date.now() + 60_000 });
    const a = q.consumer('a');
    await a.next();
    await a.close();
    const b = q.consumer('b');
    let got = false;
    const next = b.next().then((l) => {
      got = true;
      return l;
    });
    await vi.advanceTimersByTimeAsync(900);
    expect(got).toBe(false);
    await vi.advanceTimersByTimeAsync(500);
    expect((await next).job.attempt).toBe(2);
    await b.close();
    await q.close();
  });
});

describe('redis queue replication', () => {
  let topology: RedisTopology;
  beforeAll(async () => {
    topology = await startRedisTopology({ replicas: 1, sentinels: 0 });
  });
  afterAll(async () => {
    await topology?.stop();
  });

  it('acknowledges an enqueue only once a replica has it', async () => {
    const q = new RedisQueue({ connection: topology.primary.url, minReplicas: 1 });
    try {
      const id = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() });
      const onReplica = new RedisQueue({ connection: topology.replicas[0]!.url, minReplicas: 0 });
      expect((await onReplica.result(id))?.status).toBe('pending');
      await onReplica.close();
    } finally {
      await q.close();
    }
  });

  it('covers the jobs enqueued together with one WAIT (group commit), each acknowledged only once replicated', async () => {
    const q = new RedisQueue({ connection: topology.primary.url, minReplicas: 1, prefix: 'group:' });
    const onReplica = new RedisQueue({ connection: topology.replicas[0]!.url, minReplicas: 0, prefix: 'group:' });
    try {
      await connected(q);
      const ids = await Promise.all(Array.from({ length: 20 }, () => q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future() })));
      expect(q.waitsSent).toBeLessThanOrEqual(2);
      for (const id of ids) expect((await onReplica.result(id))?.status).toBe('pending');
    } finally {
      await q.close();
      await onReplica.close();
    }
  });

  it('does not acknowledge a job on the word of a WAIT resent to a new primary', { timeout: 30_000 }, async () => {
    // Two primaries with one replica each; the queue reaches them through a proxy that
    // is switched from the first to the second, as a failover moves ioredis.
    const second = await startRedisTopology({ replicas: 1, sentinels: 0 });
    let target = topology.primary.port;
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = connect(target, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as AddressInfo).port;
    const q = new RedisQueue({ connection: { host: '127.0.0.1', port }, minReplicas: 1, replicationTimeoutMs: 5000, prefix: 'moved:' });
    const replica = topology.replicas[0] as (typeof topology.replicas)[number];
    const onFirst = new RedisQueue({ connection: topology.primary.url, minReplicas: 0, prefix: 'moved:' });
    const onSecond = new RedisQueue({ connection: second.primary.url, minReplicas: 0, prefix: 'moved:' });
    try {
      await connected(q);
      process.kill(replica.pid, 'SIGSTOP'); // the first primary's job never reaches a replica
      const enqueued = q.enqueue({ id: 'j', data: bytes('a'), params: {}, deadlineAt: future() });
      // Written on the first primary; its WAIT pending.
      await eventually(async () => expect((await onFirst.result('j'))?.status).toBe('pending'), 20_000);
      target = second.primary.port; // the failover: the second primary never saw the job
      for (const socket of sockets) socket.destroy();
      await enqueued;
      // Acknowledged, so the job must be on the primary the queue now uses.
      expect((await onSecond.result('j'))?.status).toBe('pending');
    } finally {
      process.kill(replica.pid, 'SIGCONT');
      await q.close();
      await onFirst.close();
      await onSecond.close();
      proxy.close();
      for (const socket of sockets) socket.destroy();
      await second.stop();
    }
  });

  it('tells a producer in another process through the notice the FINISH script pushes, once a replica holds the result', async () => {
    const api = new RedisQueue({ connection: topology.primary.url, minReplicas: 1, prefix: 'told:', member: 'api', pollMs: 60_000 });
    const worker = new RedisQueue({ connection: topology.primary.url, minReplicas: 1, prefix: 'told:', member: 'worker' });
    const onReplica = new RedisQueue({ connection: topology.replicas[0]!.url, minReplicas: 0, prefix: 'told:' });
    try {
      const id = await api.enqueue({ data: bytes('a'), params: {}, deadlineAt: future(), attended: true });
      const waiting = api.wait(id);
      const lease = await worker.consumer('w').next();
      await lease.complete(bytes('out'), {});
      const result = await waiting; // a minute-long poll: only the inbox can deliver it in time
      expect(result.status === 'done' && Buffer.from(result.data).toString()).toBe('out');
      expect((await onReplica.result(id))?.status).toBe('done');
    } finally {
      await Promise.all([api.close(), worker.close(), onReplica.close()]);
    }
  });

  it('does not tell a producer of a result no replica confirmed, though its notice is in the inbox', async () => {
    const options = { connection: topology.primary.url, minReplicas: 1, replicationTimeoutMs: 300, prefix: 'unconfirmed:' };
    const api = new RedisQueue({ ...options, member: 'api', pollMs: 60_000 });
    const worker = new RedisQueue({ ...options, member: 'worker' });
    const replica = topology.replicas[0] as (typeof topology.replicas)[number];
    const stop = new AbortController();
    try {
      const id = await api.enqueue({ data: bytes('a'), params: {}, deadlineAt: future(), attended: true });
      let told = false;
      const waiting = api.wait(id, stop.signal).then(
        () => {
          told = true;
        },
        () => undefined,
      );
      const lease = await worker.consumer('w').next();
      // The producer's BLMPOP is blocked when the notice comes: the WAIT behind it must
      // still cover the pop (and so the result), though Redis ran the pop for the FINISH.
      while (!(await command(topology.primary.port, ['CLIENT', 'LIST'])).includes('cmd=blmpop')) {
        await new Promise((r) => setTimeout(r, 10));
      }
      process.kill(replica.pid, 'SIGSTOP'); // the result reaches the primary only
      const error = await lease.complete(bytes('out'), {}).catch((e) => e);
      expect(error).toBeInstanceOf(QueueUnavailableError);
      // The notice was pushed with the result and popped at once; without the producer's
      // own WAIT the waiter would have been told 300 ms ago.
      expect(told).toBe(false);
      process.kill(replica.pid, 'SIGCONT');
      stop.abort(new Error('done'));
      await waiting;
      expect(told).toBe(false);
    } finally {
      process.kill(replica.pid, 'SIGCONT');
      await Promise.all([api.close(), worker.close()]);
    }
  });

  it('refuses to acknowledge when not enough replicas confirm', async () => {
    const q = new RedisQueue({ connection: topology.primary.url, minReplicas: 2, replicationTimeoutMs: 50, prefix: 'refused:' });
    try {
      const error = await q.enqueue({ id: 'unreplicated', data: bytes('a'), params: {}, deadlineAt: future() }).catch((e) => e);
      expect(error).toBeInstanceOf(QueueUnavailableError);
      expect(String(error.message)).toContain('1 of 2 required replicas');
      // The client was refused, so no worker may run the job; sent again, it is a new job.
      expect(await q.result('unreplicated')).toBeUndefined();
      expect(await q.depth()).toBe(0);
    } finally {
      await q.close();
    }
  });
});

describe.each(factories)('%s queue result retention', (_name, make, fake) => {
  afterEach(() => {
    vi.useRealTimers();
  });
  it('forgets a result after the job’s own resultTtlMs', async () => {
    if (fake) vi.useFakeTimers();
    const q = make({ leaseMs: 100 });
    try {
      const id = await q.enqueue({ data: bytes('a'), params: {}, deadlineAt: future(), resultTtlMs: 150 });
      const lease = await q.consumer('c').next();
      await lease.complete(bytes('b'), {});
      expect((await q.result(id))?.status).toBe('done');
      if (fake) await vi.advanceTimersByTimeAsync(400);
      else await new Promise((r) => setTimeout(r, 400));
      expect(await q.result(id)).toBeUndefined();
    } finally {
      await q.close();
    }
  });
});
