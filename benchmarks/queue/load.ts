/**
 * One load process of `bench:queue`: either closed-loop producers (enqueue, wait for
 * the result, again) or no-op consumers (take a job, complete it at once), on their own
 * queue handle, as API servers and workers run in their own processes. Several of each
 * keep enough jobs in flight for batching and `WAIT` group commit to have something to
 * group, which one Node process driving everything cannot.
 *
 * Driven over stdin/stdout by the benchmark (`load-runner.ts`), one line each:
 *   → `ready`            set up (producers: after a warm-up of full cycles)
 *   ← `go`               start measuring (producers: run their share of jobs)
 *   → `done <json>`      producers: every job of the share acknowledged and its result read
 *   ← `stop`             close the queue, print `cpu <json>` and exit
 */
import { createInterface } from 'node:readline';
import type { JobQueue } from '@ballast/app-queue';
import { RedisQueue } from '@ballast/app-queue';

/** What the runner passes as the single argument (JSON). */
export interface LoadSpec {
  role: 'producer' | 'consumer';
  /** Module exporting `RedisQueue` (the baseline's), or undefined for the queue now. */
  module?: string;
  /** Options for its `RedisQueue`. */
  options: Record<string, unknown>;
  /** Producers or consumers in this process. */
  concurrency: number;
  /** Producers: jobs to run once told `go`. */
  jobs: number;
  /** Producers: jobs to run before `ready`. */
  warmup: number;
  idPrefix: string;
}

/** What a producer process reports. */
export interface ProducerReport {
  acknowledged: number;
  refused: number;
  elapsedMs: number;
  ackMs: number[];
  cycleMs: number[];
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
const lines = createInterface({ input: process.stdin });
const commands: string[] = [];
const waiting: Array<(line: string) => void> = [];
lines.on('line', (line) => {
  const next = waiting.shift();
  if (next) next(line.trim());
  else commands.push(line.trim());
});
const command = (): Promise<string> =>
  new Promise((resolve) => {
    const queued = commands.shift();
    if (queued !== undefined) resolve(queued);
    else waiting.push(resolve);
  });

const Queue = spec.module ? ((await import(spec.module)) as { RedisQueue: new (options: object) => JobQueue }).RedisQueue : RedisQueue;
const queue = new Queue(spec.options);

async function produce(jobs: number, prefix: string, report?: ProducerReport): Promise<void> {
  let issued = 0;
  await Promise.all(
    Array.from({ length: spec.concurrency }, async () => {
      while (issued < jobs) {
        const n = issued++;
        const t0 = performance.now();
        let id: string;
        try {
          id = await queue.enqueue({
            id: `${prefix}${n}`,
            data: Buffer.from('x'),
            params: { tenant: `t${n % 16}` },
            deadlineAt: Date.now() + 600_000,
            attended: true,
          });
        } catch {
          if (report) report.refused++;
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        const t1 = performance.now();
        await queue.wait(id);
        if (report) {
          report.acknowledged++;
          report.ackMs.push(t1 - t0);
          report.cycleMs.push(performance.now() - t0);
        }
      }
    }),
  );
}

const stop = new AbortController();
const consumers: Array<Promise<void>> = [];
if (spec.role === 'consumer') {
  for (let i = 0; i < spec.concurrency; i++) {
    consumers.push(
      (async () => {
        const consumer = queue.consumer(`c${i}`);
        while (!stop.signal.aborted) {
          const lease = await consumer.next(stop.signal).catch(() => undefined);
          if (lease) await lease.complete(Buffer.from('ok'), { wallMs: 0 }).catch(() => undefined);
        }
        await consumer.close();
      })(),
    );
  }
} else {
  await produce(spec.warmup, `${spec.idPrefix}w`);
}
console.log('ready');
let cpu: NodeJS.CpuUsage | undefined;
for (let line = await command(); ; line = await command()) {
  if (line === 'go') {
    cpu = process.cpuUsage();
    if (spec.role === 'producer') {
      const report: ProducerReport = { acknowledged: 0, refused: 0, elapsedMs: 0, ackMs: [], cycleMs: [] };
      const started = performance.now();
      await produce(spec.jobs, spec.idPrefix, report);
      report.elapsedMs = performance.now() - started;
      const used = process.cpuUsage(cpu);
      console.log(`done ${JSON.stringify({ ...report, cpuUs: used.user + used.system })}`);
    }
  } else if (line === 'stop') {
    const used = cpu ? process.cpuUsage(cpu) : { user: 0, system: 0 };
    stop.abort(new Error('stop'));
    await Promise.all(consumers);
    await queue.close();
    console.log(`cpu ${JSON.stringify({ cpuUs: used.user + used.system })}`);
    process.exit(0);
  }
}
