/**
 * What only the Redis queue does: heartbeats that reclaim a gone member's jobs before
 * its lease lapses, orphans dropped, results delivered through the producer's inbox,
 * one ledger and one service-time feed shared by every handle, WAIT group commit.
 */
import { command, type RedisServer, startRedis } from '@ballast/test/redis';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GroupWait } from './group-wait.ts';
import { type LedgerEntry, RedisQueue, type RedisQueueOptions } from './index.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

let prefixes = 0;
const open: RedisQueue[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.close()));
});

/** Handles on one queue (one prefix), as separate processes would hold them. */
function handles(options: RedisQueueOptions = {}): (member: string, extra?: RedisQueueOptions) => RedisQueue {
  const prefix = `r${++prefixes}:`;
  return (member, extra) => {
    const q = new RedisQueue({ connection: redis.url, minReplicas: 0, prefix, member, pollMs: 60_000, ...options, ...extra });
    open.push(q);
    return q;
  };
}

const future = (ms = 30_000): number => Date.now() + ms;

/** Polls a condition against the real server; fails after `timeoutMs`. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function ledger(q: RedisQueue): Promise<LedgerEntry[]> {
  const out: LedgerEntry[] = [];
  for await (const entry of q.ledger(0, Date.now() + 60_000)) out.push(entry);
  return out;
}

describe('heartbeats', () => {
  it('reclaim a gone worker’s job long before its lease lapses; a live worker keeps its own', { timeout: 30_000 }, async () => {
    // A one-minute lease: only the heartbeats can hand the job on within this test.
    const handle = handles({ leaseMs: 60_000 });
    const survivor = handle('survivor');
    const doomed = handle('doomed');
    const live = handle('live');
    const idle = survivor.consumer('s');
    const liveConsumer = live.consumer('l');
    const doomedConsumer = doomed.consumer('d');
    await until('the survivor to hear the others', () => survivor.membership().alive.length === 3);
    const held = await live.enqueue({ data: Buffer.from('b'), params: {}, deadlineAt: future() });
    const kept = await liveConsumer.next();
    expect(kept.job.id).toBe(held);
    const id = await doomed.enqueue({ data: Buffer.from('a'), params: {}, deadlineAt: future() });
    const taken = await doomedConsumer.next();
    expect(taken.job.id).toBe(id);
    await doomed.close(); // heartbeats stop; its job stays unacknowledged
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error('not reclaimed within 15 s')), 15_000);
    const again = await idle.next(ac.signal);
    clearTimeout(timer);
    expect(again.job).toMatchObject({ id, attempt: 2 });
    expect(survivor.membership().gone).toContain('doomed');
    await again.complete(Buffer.from('ok'), {});
    // The live worker's job was never taken from it.
    await kept.complete(Buffer.from('kept'), {});
    const entries = await ledger(survivor);
    expect(entries.find((e) => e.jobId === held)).toMatchObject({ worker: 'l', attempt: 1 });
    expect(entries.find((e) => e.jobId === id)).toMatchObject({ worker: 's', attempt: 2 });
    expect(survivor.stats().reclaimed).toBe(1);
  });

  it('reclaim nothing while the channel itself is silent (our own heartbeats missing too)', async () => {
    const handle = handles({ leaseMs: 60_000 });
    const q = handle('solo');
    q.consumer('c');
    await until('our own heartbeats to come back', () => q.membership().alive.includes('solo'));
    // Heard only from ourselves so far: a member never heard of is not gone.
    expect(q.membership().gone).toEqual([]);
  });
});

describe('orphans', () => {
  it('drops an attended job whose producer is gone before it starts, and counts it', { timeout: 30_000 }, async () => {
    const handle = handles();
    const worker = handle('worker');
    const producer = handle('api-1');
    const consumer = worker.consumer('w');
    const from = Date.now();
    const orphan = await producer.enqueue({ data: Buffer.from('a'), params: { tenant: 't' }, deadlineAt: future(), attended: true });
    await until('the worker to hear the producer', () => worker.membership().alive.includes('api-1'));
    await producer.close(); // the API server dies with its client's request
    await until('the producer to be found gone', () => worker.membership().gone.includes('api-1'));
    const later = await worker.enqueue({ data: Buffer.from('b'), params: {}, deadlineAt: future() });
    const lease = await consumer.next();
    expect(lease.job.id).toBe(later); // the orphan was dropped, not converted
    expect(await worker.result(orphan)).toEqual({ id: orphan, status: 'cancelled' });
    expect(worker.stats().orphaned).toBe(1);
    const entry = (await ledger(worker)).find((e) => e.jobId === orphan);
    expect(entry).toMatchObject({ outcome: 'cancelled', reason: 'orphaned', tenant: 't', worker: 'w', attempt: 1 });
    expect(entry?.finishedAt).toBeGreaterThanOrEqual(from - 1000);
  });

  it('converts a job nobody waits for (async) even when its producer is gone', { timeout: 30_000 }, async () => {
    const handle = handles();
    const worker = handle('worker');
    const producer = handle('api-2');
    const consumer = worker.consumer('w');
    producer.consumer('keeps-heartbeats'); // so the worker hears this producer at all
    const id = await producer.enqueue({ data: Buffer.from('a'), params: {}, deadlineAt: future() });
    await until('the worker to hear the producer', () => worker.membership().alive.includes('api-2'));
    await producer.close();
    await until('the producer to be found gone', () => worker.membership().gone.includes('api-2'));
    expect((await consumer.next()).job.id).toBe(id);
  });
});

describe('results', () => {
  it('reach the producer that waits through its inbox, not by polling', async () => {
    const handle = handles();
    const api = handle('api', { pollMs: 60_000 });
    const worker = handle('worker');
    const id = await api.enqueue({ data: Buffer.from('a'), params: {}, deadlineAt: future(), attended: true });
    const waiting = api.wait(id);
    const lease = await worker.consumer('w').next();
    await lease.complete(Buffer.from('out'), { wallMs: 1 });
    const result = await waiting; // a minute-long poll: only the inbox can deliver it in time
    expect(result.status === 'done' && result.data.toString()).toBe('out');
  });

  it('one ledger and one service-time feed for every handle', async () => {
    const handle = handles();
    const api = handle('api');
    const worker = handle('worker');
    const id = await api.enqueue({ data: Buffer.from('a'), params: { tenant: 'acme' }, deadlineAt: future() });
    await (await worker.consumer('w').next()).complete(Buffer.from('out'), { cpuMs: 2 });
    const stats = await api.serviceStats();
    expect(stats.samples).toBe(1);
    expect(stats.recentMs).toHaveLength(1);
    expect(stats.meanMs).toBe(stats.recentMs[0]);
    expect(stats.updatedAt).toBeGreaterThan(Date.now() - 60_000);
    expect(await ledger(api)).toEqual([
      expect.objectContaining({ jobId: id, tenant: 'acme', outcome: 'done', worker: 'w', attempt: 1, usage: { cpuMs: 2 } }),
    ]);
  });
});

describe('cost per job', () => {
  async function commandCalls(name: string): Promise<number> {
    const info = await command(redis.port, ['INFO', 'commandstats']);
    return Number(info.match(new RegExp(`cmdstat_${name}:calls=(\\d+)`))?.[1] ?? 0);
  }

  it('serves the consumers of a process with one read for all that wait together', async () => {
    const handle = handles();
    const api = handle('api');
    const worker = handle('worker');
    const ids = await Promise.all(
      Array.from({ length: 8 }, () => api.enqueue({ data: Buffer.from('a'), params: {}, deadlineAt: future() })),
    );
    const consumers = Array.from({ length: 8 }, (_, i) => worker.consumer(`c${i}`));
    const before = await commandCalls('xreadgroup');
    const leases = await Promise.all(consumers.map((c) => c.next()));
    expect(leases.map((l) => l.job.id).sort()).toEqual([...ids].sort());
    expect((await commandCalls('xreadgroup')) - before).toBeLessThanOrEqual(2);
    await Promise.all(leases.map((l) => l.complete(Buffer.from('ok'), {})));
  });

  it('claims a consumer’s next job in the script that finishes its current one (prefetch): no read of its own', async () => {
    const handle = handles({ leaseMs: 60_000 });
    const api = handle('api');
    const worker = handle('worker');
    // Bytes that are not UTF-8: the claimed entries come back from the script as they were stored.
    const data = Buffer.from([0xff, 0x00, 0xfe, 0x80]);
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(await api.enqueue({ data, params: {}, deadlineAt: future() }));
    const consumer = worker.consumer('w');
    let lease = await consumer.next();
    // MONITOR names the source of each command: a script's own ('lua') or a client's.
    const monitor = await new Redis(redis.url).monitor();
    const reads = { script: 0, own: 0 };
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (String(args[0]).toLowerCase() !== 'xreadgroup') return;
      if (source === 'lua') reads.script++;
      else reads.own++;
    });
    const got = [lease.job.id];
    for (let i = 1; i < ids.length; i++) {
      await lease.complete(Buffer.from('ok'), {});
      lease = await consumer.next();
      expect(lease.job.data).toEqual(data);
      expect(lease.job.attempt).toBe(1);
      got.push(lease.job.id);
    }
    await lease.complete(Buffer.from('ok'), {});
    expect(got).toEqual(ids);
    await until('the monitor to see the claims', () => reads.script >= 15);
    monitor.disconnect();
    // A reclaim scan every half second makes the next job come from a read instead: a few at most.
    expect(reads.own).toBeLessThanOrEqual(5);
    expect(await api.stats()).toMatchObject({ depth: 0 });
  });

  /**
   * Two jobs; `holder` runs the first, and the FINISH call claims the second for it
   * (prefetch), which it never asks for. `busy` is another process, asking.
   */
  async function secondClaimedBy(
    options: RedisQueueOptions,
  ): Promise<{ api: RedisQueue; holder: RedisQueue; busy: RedisQueue; second: string }> {
    const handle = handles(options);
    const [api, holder, busy] = [handle('api'), handle('holder'), handle('busy')];
    const first = await api.enqueue({ data: Buffer.from('1'), params: {}, deadlineAt: future() });
    const second = await api.enqueue({ data: Buffer.from('2'), params: {}, deadlineAt: future() });
    const lease = await holder.consumer('h').next();
    expect(lease.job.id).toBe(first);
    await lease.complete(Buffer.from('ok'), {});
    return { api, holder, busy, second };
  }

  it('hands a prefetched job nobody asks for back, and another process runs it as its first attempt', async () => {
    const prefix = `prefetch${++prefixes}:`;
    const { api, busy, second } = await secondClaimedBy({ prefix, leaseMs: 400 });
    const redisClient = new Redis(redis.url);
    try {
      const pending = (await redisClient.xpending(`${prefix}jobs`, 'workers', '-', '+', 10)) as Array<[string, string]>;
      expect(pending.map(([, owner]) => owner)).toEqual(['q@holder']);
    } finally {
      redisClient.disconnect();
    }
    const taken = await busy.consumer('b').next();
    expect(taken.job).toMatchObject({ id: second, attempt: 1 });
    await taken.complete(Buffer.from('ok'), {});
    expect(await api.wait(second)).toMatchObject({ status: 'done' });
  });

  it('hands the prefetched jobs back when the process closes: another runs them as their first attempt', async () => {
    const { holder, busy, second } = await secondClaimedBy({ leaseMs: 60_000 });
    await holder.close();
    // Handed back, not found gone: a reclaim after the heartbeats stopped would count a second attempt.
    const taken = await busy.consumer('b').next();
    expect(taken.job).toMatchObject({ id: second, attempt: 1 });
    await taken.complete(Buffer.from('ok'), {});
  });

  it('hands the prefetched jobs back when the process’s last consumer closes (a worker shutting down)', async () => {
    const prefix = `prefetch${++prefixes}:`;
    const handle = handles({ prefix, leaseMs: 60_000 });
    const api = handle('api');
    const holder = handle('holder');
    await api.enqueue({ data: Buffer.from('1'), params: {}, deadlineAt: future() });
    await api.enqueue({ data: Buffer.from('2'), params: {}, deadlineAt: future() });
    const consumer = holder.consumer('h');
    const lease = await consumer.next();
    await lease.complete(Buffer.from('ok'), {});
    await consumer.close();
    // Handed back: idle far beyond the lease, so any reclaim scan takes it at once.
    const redisClient = new Redis(redis.url);
    try {
      const pending = (await redisClient.xpending(`${prefix}jobs`, 'workers', '-', '+', 10)) as Array<[string, string, number]>;
      expect(pending).toHaveLength(1);
      expect(Number(pending[0]?.[2])).toBeGreaterThanOrEqual(60_000);
    } finally {
      redisClient.disconnect();
    }
  });

  it('enqueues jobs that arrive together with one script call', async () => {
    const api = handles()('api');
    await api.ping();
    const before = await commandCalls('evalsha');
    await Promise.all(Array.from({ length: 20 }, () => api.enqueue({ data: Buffer.from('a'), params: {}, deadlineAt: future() })));
    expect((await commandCalls('evalsha')) - before).toBeLessThanOrEqual(2);
  });

  /** Completes one attended job with `result`; returns what the producer got and the GETs Redis ran meanwhile. */
  async function cycle(result: Buffer): Promise<{ got: Buffer | undefined; gets: number }> {
    const handle = handles();
    const api = handle('api');
    const worker = handle('worker');
    const id = await api.enqueue({ data: Buffer.from('a'), params: {}, deadlineAt: future(), attended: true });
    const waiting = api.wait(id);
    const lease = await worker.consumer('w').next();
    const before = await commandCalls('get');
    await lease.complete(result, {});
    const state = await waiting;
    return { got: state.status === 'done' ? state.data : undefined, gets: (await commandCalls('get')) - before };
  }

  it('hands a small result to the producer in its notice: no second read', async () => {
    const { got, gets } = await cycle(Buffer.from('small'));
    expect(got?.toString()).toBe('small');
    expect(gets).toBe(1); // the FINISH script's own check of the job's state
  });

  it('hands a large result over by reference: the producer reads it once', async () => {
    const big = Buffer.alloc(100_000, 7);
    const { got, gets } = await cycle(big);
    expect(got?.equals(big)).toBe(true);
    expect(gets).toBe(2);
  });
});

describe('GroupWait', () => {
  it('sends one WAIT for every write of a tick, after them, and a new one for writes after it', async () => {
    const sent: Array<(n: number) => void> = [];
    const group = new GroupWait(() => new Promise<number>((resolve) => sent.push(resolve)));
    const first = group.after();
    const second = group.after();
    expect(sent).toHaveLength(0); // sent at the end of the tick, after every write of it
    await Promise.resolve();
    expect(sent).toHaveLength(1);
    const third = group.after(); // a write sent after that WAIT: it cannot vouch for it
    await Promise.resolve();
    expect(sent).toHaveLength(2);
    sent[1]?.(2);
    sent[0]?.(1);
    expect(await Promise.all([first, second, third])).toEqual([1, 1, 2]);
    expect(group.sent).toBe(2);
  });

  it('passes a failed WAIT on to every write it covers', async () => {
    const group = new GroupWait(() => Promise.reject(new Error('connection lost')));
    const results = await Promise.allSettled([group.after(), group.after()]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
