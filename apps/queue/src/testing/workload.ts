/**
 * The workload of the failure scenarios (partition, power cut): producers that enqueue
 * throughout and record every job whose enqueue was acknowledged, consumers that complete
 * jobs throughout, and the check at the end: every acknowledged job reached `done` and
 * has exactly one ledger entry.
 */
import type { RedisTopology } from '@ballast/test/redis';
import { RedisQueue, type RedisQueueOptions } from '../redis.ts';

/** Options of {@link startWorkload}. */
export interface WorkloadOptions {
  /** Producers enqueueing at once; producer `p` enqueues `p<p>-0`, `p<p>-1`, … for tenant `t<p>`. */
  producers: number;
  /** Consumers completing jobs. */
  consumers: number;
  /** Options of the producers' and the consumers' queue handles (the connection is the topology's, through its Sentinels). */
  queue: Omit<RedisQueueOptions, 'connection' | 'member'>;
  /** Extra ioredis options of both handles (timeouts). */
  connection?: { connectTimeout?: number };
}

/** What the check at the end of a workload found. */
export interface WorkloadVerdict {
  acknowledged: number;
  refused: number;
  /** Acknowledged jobs that never completed or have no ledger entry: must be empty. */
  lost: string[];
  /** Jobs with more than one ledger entry: must be empty. */
  twice: string[];
  /** Jobs run more than once by consumers (at-least-once delivery), for information. */
  reruns: number;
}

/** A running workload. */
export interface Workload {
  /** Every job whose enqueue was acknowledged so far. */
  readonly acknowledged: ReadonlySet<string>;
  /** Resolves once at least `n` jobs were acknowledged. */
  reach(n: number): Promise<void>;
  /**
   * Stops the producers, waits (up to `drainMs`) until every acknowledged job is `done`,
   * stops the consumers and checks the ledger.
   */
  verify(drainMs: number): Promise<WorkloadVerdict>;
  /** Stops everything and closes both queue handles. */
  close(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts producers and consumers on the primary `topology`'s Sentinels point to. */
export function startWorkload(topology: RedisTopology, options: WorkloadOptions): Workload {
  const connection = { sentinels: topology.sentinelAddresses, name: topology.masterName, ...options.connection };
  const producer = new RedisQueue({ ...options.queue, connection, member: 'producer' });
  const worker = new RedisQueue({ ...options.queue, connection, member: 'worker' });
  const verdict: WorkloadVerdict = { acknowledged: 0, refused: 0, lost: [], twice: [], reruns: 0 };
  const acknowledged = new Set<string>();
  const from = Date.now();
  let producing = true;
  const stop = new AbortController();
  const producers = Promise.all(
    Array.from({ length: options.producers }, async (_, p) => {
      for (let n = 0; producing; n++) {
        const id = `p${p}-${n}`;
        try {
          await producer.enqueue({ id, data: Buffer.from(id), params: { tenant: `t${p}` }, deadlineAt: Date.now() + 600_000 });
          acknowledged.add(id);
        } catch {
          verdict.refused++; // not acknowledged: the client was told to retry
          await sleep(50);
        }
      }
    }),
  );
  const consumers = Promise.all(
    Array.from({ length: options.consumers }, async (_, c) => {
      const consumer = worker.consumer(`c${c}`);
      while (!stop.signal.aborted) {
        const lease = await consumer.next(stop.signal).catch(() => undefined);
        if (!lease) {
          await sleep(20);
          continue;
        }
        if (lease.job.attempt > 1) verdict.reruns++;
        await lease.complete(lease.job.data, {}).catch(() => undefined);
      }
      await consumer.close();
    }),
  );
  const close = async (): Promise<void> => {
    producing = false;
    stop.abort(new Error('done'));
    await producer.close();
    await worker.close();
  };
  return {
    acknowledged,
    async reach(n) {
      while (acknowledged.size < n) await sleep(20);
    },
    async verify(drainMs) {
      producing = false;
      await producers;
      verdict.lost = await undone(producer, acknowledged, Date.now() + drainMs);
      stop.abort(new Error('done'));
      await consumers;
      const perJob = new Map<string, number>();
      for await (const entry of producer.ledger(from - 60_000, Date.now() + 60_000))
        perJob.set(entry.jobId, (perJob.get(entry.jobId) ?? 0) + 1);
      for (const id of acknowledged) if (!perJob.has(id) && !verdict.lost.includes(id)) verdict.lost.push(id);
      verdict.twice = [...perJob].filter(([, n]) => n > 1).map(([id]) => id);
      verdict.acknowledged = acknowledged.size;
      return verdict;
    },
    close,
  };
}

/** Those of `ids` whose result is not `done` by `deadline` (epoch ms). */
async function undone(queue: RedisQueue, ids: ReadonlySet<string>, deadline: number): Promise<string[]> {
  const lost: string[] = [];
  for (const id of ids) {
    while ((await queue.result(id).catch(() => undefined))?.status !== 'done') {
      if (Date.now() > deadline) {
        lost.push(id);
        break;
      }
      await sleep(50);
    }
  }
  return lost;
}
