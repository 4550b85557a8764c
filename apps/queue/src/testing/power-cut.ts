/**
 * Correlated failure: every Redis process of a topology (primary, replicas, Sentinels)
 * killed at once with SIGKILL while jobs are enqueued and completed, then started again
 * from what each persisted. Every job whose enqueue was acknowledged must still be there
 * and complete exactly once (one ledger entry).
 */
import { type RedisPersistence, startRedisTopology } from '@ballast/test/redis';
import { startWorkload, type WorkloadVerdict } from './workload.ts';

/** What {@link runPowerCutScenario} found. */
export interface PowerCutReport extends WorkloadVerdict {
  acknowledgedBeforeCut: number;
}

/** Runs the scenario on a fresh primary + 2 replicas + 3 Sentinels with `persistence`. */
export async function runPowerCutScenario(persistence: RedisPersistence = 'everysec', drainMs = 120_000): Promise<PowerCutReport> {
  // Sentinel's down-after is above the time the servers take to reload their files: a failover
  // during the restart can promote a replica in the middle of a full resynchronisation
  // (see apps/README.md, durability).
  const topology = await startRedisTopology({ replicas: 2, sentinels: 3, persistence, downAfterMs: 10_000, failoverTimeoutMs: 20_000 });
  const workload = startWorkload(topology, {
    producers: 1,
    consumers: 1,
    queue: { minReplicas: 1, replicationTimeoutMs: 1000, leaseMs: 2000, pollMs: 200, maxDepth: 100_000 },
  });
  try {
    await workload.reach(50);
    await topology.powerCut();
    const acknowledgedBeforeCut = workload.acknowledged.size;
    await workload.reach(acknowledgedBeforeCut + 50); // the queue goes on after the restart
    return { acknowledgedBeforeCut, ...(await workload.verify(drainMs)) };
  } finally {
    await workload.close();
    await topology.stop();
  }
}
