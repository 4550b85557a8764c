/**
 * Correlated failure: every Redis process of the topology (primary, replicas,
 * Sentinels) killed at once with SIGKILL while jobs are enqueued and completed, then
 * started again from their append-only files. Every job whose enqueue was acknowledged
 * is still there and completes exactly once (one ledger entry, one final result).
 */
import { type RedisTopology, startRedisTopology } from '@ballast/test/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LedgerEntry, RedisQueue } from './index.ts';

let topology: RedisTopology;
beforeAll(async () => {
  topology = await startRedisTopology({ replicas: 2, sentinels: 3, persistence: 'everysec', downAfterMs: 1000, failoverTimeoutMs: 5000 });
});
afterAll(async () => {
  await topology?.stop();
});

describe('a power cut of every Redis process at once', () => {
  it('loses no acknowledged job, and each completes exactly once', { timeout: 120_000 }, async () => {
    const connection = { sentinels: topology.sentinelAddresses, name: topology.masterName };
    const options = { connection, minReplicas: 1, replicationTimeoutMs: 1000, leaseMs: 2000, pollMs: 200, maxDepth: 100_000 };
    const producer = new RedisQueue({ ...options, member: 'producer' });
    const worker = new RedisQueue({ ...options, member: 'worker' });
    const acknowledged = new Set<string>();
    const from = Date.now();
    let producing = true;
    let refused = 0;
    const produce = (async () => {
      for (let i = 0; producing; i++) {
        try {
          acknowledged.add(
            await producer.enqueue({ id: `job-${i}`, data: Buffer.from('x'), params: {}, deadlineAt: Date.now() + 600_000 }),
          );
        } catch {
          refused++; // not acknowledged: the client was told to retry
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    })();
    const consumer = worker.consumer('w');
    let consuming = true;
    const consume = (async () => {
      while (consuming) {
        const ac = new AbortController();
        const stop = setInterval(() => !consuming && ac.abort(new Error('stop')), 100);
        try {
          const lease = await consumer.next(ac.signal);
          await lease.complete(Buffer.from(lease.job.id), {}).catch(() => {});
        } catch {
          // stopped, or Redis away: the loop tries again
        } finally {
          clearInterval(stop);
        }
      }
    })();
    const enough = async (n: number): Promise<void> => {
      while (acknowledged.size < n) await new Promise((r) => setTimeout(r, 20));
    };
    await enough(50);
    await topology.powerCut();
    const atCut = acknowledged.size;
    await enough(atCut + 50); // the queue goes on after the restart
    producing = false;
    await produce;
    // Drain: every acknowledged job reaches a final state.
    const deadline = Date.now() + 60_000;
    for (const id of acknowledged) {
      while ((await producer.result(id).catch(() => undefined))?.status !== 'done') {
        if (Date.now() > deadline) throw new Error(`job ${id} never completed`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    consuming = false;
    await consume;
    const ledger: LedgerEntry[] = [];
    for await (const entry of producer.ledger(from - 1000, Date.now() + 60_000)) ledger.push(entry);
    const perJob = new Map<string, number>();
    for (const entry of ledger) perJob.set(entry.jobId, (perJob.get(entry.jobId) ?? 0) + 1);
    const lost = [...acknowledged].filter((id) => !perJob.has(id));
    const twice = [...perJob].filter(([, n]) => n > 1);
    console.log(
      `power cut: ${acknowledged.size} acknowledged (${atCut} before the cut), ${refused} refused, ${lost.length} lost, ${twice.length} completed twice`,
    );
    expect(lost).toEqual([]);
    expect(twice).toEqual([]);
    await consumer.close();
    await producer.close();
    await worker.close();
  });
});
