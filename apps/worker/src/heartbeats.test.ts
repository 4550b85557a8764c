/**
 * Worker heartbeats against real processes: a worker process killed with SIGKILL in
 * the middle of a job has the job taken over as soon as its heartbeats are missed —
 * under a one-minute lease, so nothing but the heartbeats can hand it on — while a
 * worker that is slow but alive keeps its job, and a paused one (SIGSTOP) loses it and,
 * once resumed, finishes a copy whose result is discarded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type LedgerEntry, RedisQueue } from '@ballast/app-queue';
import { type RedisServer, startRedis } from '@ballast/test/redis';
import sharp from 'sharp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

const LEASE_MS = 60_000;
/** How long to wait for a worker process to start, print or be heard: a loaded machine takes its time. */
const WAIT_MS = 40_000;
let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 10, g: 120, b: 200 } } })
    .jpeg()
    .toBuffer();
});

let redis: RedisServer;
let child: ChildProcess | undefined;
let survivor: RedisQueue;
beforeEach(async () => {
  redis = await startRedis();
  survivor = new RedisQueue({ connection: redis.url, minReplicas: 0, leaseMs: LEASE_MS, member: 'survivor', pollMs: 100 });
});
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  await survivor.close();
  await redis.stop();
});

/** Starts the holding worker process; resolves once it consumes and the survivor hears its heartbeats. */
async function startWorker(name: string): Promise<{ proc: ChildProcess; line: (pattern: RegExp) => Promise<string> }> {
  const proc = spawn(
    process.execPath,
    ['--conditions=@ballast/source', fileURLToPath(new URL('./testing/holding-worker.fixture.ts', import.meta.url))],
    {
      env: {
        ...process.env,
        BALLAST_REDIS_URL: redis.url,
        BALLAST_REDIS_MIN_REPLICAS: '0',
        BALLAST_QUEUE_LEASE_MS: String(LEASE_MS),
        BALLAST_WORKER_NAME: name,
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  child = proc;
  let output = '';
  const waiters: Array<() => void> = [];
  proc.stdout?.on('data', (chunk) => {
    output += String(chunk);
    for (const w of waiters.splice(0)) w();
  });
  const line = async (pattern: RegExp): Promise<string> => {
    const deadline = Date.now() + WAIT_MS;
    while (true) {
      const match = output.match(pattern);
      if (match) return match[1] ?? match[0];
      if (Date.now() > deadline) throw new Error(`the worker process never printed ${pattern}; it printed:\n${output}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200).unref();
      });
    }
  };
  await line(/ready/);
  await until(`the survivor to hear ${name}`, () => survivor.membership().alive.includes(name));
  return { proc, line };
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function ledger(q: RedisQueue, id: string): Promise<LedgerEntry[]> {
  const out: LedgerEntry[] = [];
  for await (const entry of q.ledger(0, Date.now() + 60_000)) if (entry.jobId === id) out.push(entry);
  return out;
}

const enqueue = (): Promise<string> =>
  survivor.enqueue({ data: jpeg, params: { resize: { width: '16' }, tenant: 't' }, deadlineAt: Date.now() + 120_000 });

describe('worker heartbeats, real processes', () => {
  it('a worker killed with SIGKILL mid-job has its job reclaimed as soon as it is suspected', { timeout: 180_000 }, async () => {
    const consumer = survivor.consumer('s');
    const worker = await startWorker('doomed');
    const id = await enqueue();
    expect(await worker.line(/claimed (\S+)/)).toBe(id);
    const killedAt = performance.now();
    worker.proc.kill('SIGKILL');
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new Error('not reclaimed within 30 s')), 30_000);
    const lease = await consumer.next(ac.signal);
    clearTimeout(timer);
    console.log(`reclaimed ${Math.round(performance.now() - killedAt)} ms after SIGKILL (lease ${LEASE_MS} ms)`);
    expect(lease.job).toMatchObject({ id, attempt: 2 });
    await lease.complete(Buffer.from('done by survivor'), {});
    expect(await ledger(survivor, id)).toEqual([expect.objectContaining({ outcome: 'done', worker: 's', attempt: 2 })]);
  });

  it('a worker slow but alive keeps its job', { timeout: 180_000 }, async () => {
    const consumer = survivor.consumer('s');
    const worker = await startWorker('slow');
    const id = await enqueue();
    expect(await worker.line(/claimed (\S+)/)).toBe(id);
    // Several detection times pass (heartbeat 250 ms + pause 1 s) while it holds the job.
    const ac = new AbortController();
    const stolen = consumer.next(ac.signal).catch((error: Error) => error);
    await new Promise((r) => setTimeout(r, 5000));
    worker.proc.stdin?.write('go\n');
    expect(await worker.line(/stored (\S+)/)).toBe(id);
    ac.abort(new Error('nothing to steal'));
    expect(String(await stolen)).toContain('nothing to steal');
    expect(survivor.stats().reclaimed).toBe(0);
    expect(await ledger(survivor, id)).toEqual([expect.objectContaining({ outcome: 'done', worker: 'slow-0', attempt: 1 })]);
  });

  it('a paused worker (SIGSTOP) loses its job; resumed, its late result is discarded', { timeout: 180_000 }, async () => {
    const consumer = survivor.consumer('s');
    const worker = await startWorker('paused');
    const id = await enqueue();
    expect(await worker.line(/claimed (\S+)/)).toBe(id);
    worker.proc.kill('SIGSTOP');
    const lease = await consumer.next();
    expect(lease.job).toMatchObject({ id, attempt: 2 });
    await lease.complete(Buffer.from('survivor'), {});
    worker.proc.kill('SIGCONT');
    worker.proc.stdin?.write('go\n');
    // The resumed worker converts its copy and stores nothing: the first result stays.
    expect(await worker.line(/stored (\S+)/)).toBe(id);
    const result = await survivor.result(id);
    expect(result?.status === 'done' && result.data.toString()).toBe('survivor');
    expect(await ledger(survivor, id)).toEqual([expect.objectContaining({ worker: 's', attempt: 2 })]);
  });
});
