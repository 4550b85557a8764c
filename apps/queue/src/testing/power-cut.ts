/**
 * Correlated failure: every Redis process of a topology (primary, replicas, Sentinels)
 * killed at once with SIGKILL while jobs are enqueued and completed, then started again
 * from what each persisted. Every job whose enqueue was acknowledged must still be there
 * and complete exactly once (one ledger entry).
 */
import { type RedisPersistence, startRedisTopology } from '@ballast/test/redis';
import { RedisQueue } from '../redis.ts';

/** What {@link runPowerCutScenario} found. */
export interface PowerCutReport {
  acknowledged: number;
  acknowledgedBeforeCut: number;
  refused: number;
  /** Acknowledged jobs that never completed or have no ledger entry: must be empty. */
  lost: string[];
  /** Jobs with more than one ledger entry: must be empty. */
  twice: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs the scenario on a fresh primary + 2 replicas + 3 Sentinels with `persistence`. */
export async function runPowerCutScenario(persistence: RedisPersistence = 'everysec', drainMs = 120_000): Promise<PowerCutReport> {
  // Sentinel's down-after is above the time the servers take to reload their files: a failover
  // during the restart can promote a replica in the middle of a full resynchronisation
  // (see apps/README.md, durability).
  const topology = await startRedisTopology({ replicas: 2, sentinels: 3, persistence, downAfterMs: 10_000, failoverTimeoutMs: 20_000 });
  const connection = { sentinels: topology.sentinelAddresses, name: topology.masterName };
  const options = { connection, minReplicas: 1, replicationTimeoutMs: 1000, leaseMs: 2000, pollMs: 200, maxDepth: 100_000 };
  const producer = new RedisQueue({ ...options, member: 'producer' });
  const worker = new RedisQueue({ ...options, member: 'worker' });
  const acknowledged = new Set<string>();
  const report: PowerCutReport = { acknowledged: 0, acknowledgedBeforeCut: 0, refused: 0, lost: [], twice: [] };
  const from = Date.now();
  let producing = true;
  const stop = new AbortController();
  try {
    const produce = (async () => {
      for (let i = 0; producing; i++) {
        try {
          acknowledged.add(
            await producer.enqueue({ id: `job-${i}`, data: Buffer.from('x'), params: {}, deadlineAt: Date.now() + 600_000 }),
          );
        } catch {
          report.refused++; // not acknowledged: the client was told to retry
          await sleep(50);
        }
      }
    })();
    const consumer = worker.consumer('w');
    const consume = (async () => {
      while (!stop.signal.aborted) {
        const lease = await consumer.next(stop.signal).catch(() => undefined);
        if (!lease) {
          await sleep(20);
          continue;
        }
        await lease.complete(Buffer.from(lease.job.id), {}).catch(() => undefined);
      }
      await consumer.close();
    })();
    const enough = async (n: number): Promise<void> => {
      while (acknowledged.size < n) await sleep(20);
    };
    await enough(50);
    await topology.powerCut();
    report.acknowledgedBeforeCut = acknowledged.size;
    await enough(report.acknowledgedBeforeCut + 50); // the queue goes on after the restart
    producing = false;
    await produce;
    const deadline = Date.now() + drainMs;
    for (const id of acknowledged) {
      while ((await producer.result(id).catch(() => undefined))?.status !== 'done') {
        if (Date.now() > deadline) {
          report.lost.push(id);
          break;
        }
        await sleep(50);
      }
    }
    stop.abort(new Error('done'));
    await consume;
    const perJob = new Map<string, number>();
    for await (const entry of producer.ledger(from - 1000, Date.now() + 60_000))
      perJob.set(entry.jobId, (perJob.get(entry.jobId) ?? 0) + 1);
    for (const id of acknowledged) if (!perJob.has(id) && !report.lost.includes(id)) report.lost.push(id);
    report.twice = [...perJob].filter(([, n]) => n > 1).map(([id]) => id);
    report.acknowledged = acknowledged.size;
    return report;
  } finally {
    producing = false;
    stop.abort(new Error('done'));
    await producer.close();
    await worker.close();
    await topology.stop();
  }
}
