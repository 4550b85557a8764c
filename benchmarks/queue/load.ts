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
import { type CycleReport, consumeNoOp, produceCycles } from '@ballast/app-queue/testing';

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

const fresh = (): CycleReport => ({ acknowledged: 0, refused: 0, completed: 0, elapsedMs: 0, ackMs: [], cycleMs: [] });
const stop = new AbortController();
const consumers = spec.role === 'consumer' ? consumeNoOp(queue, spec.concurrency, stop.signal) : Promise.resolve();
if (spec.role === 'producer') {
  await produceCycles(queue, { producers: spec.concurrency, jobs: spec.warmup, idPrefix: `${spec.idPrefix}w` }, fresh());
}
console.log('ready');
let cpu: NodeJS.CpuUsage | undefined;
/** FINISH calls that read the stream inside the script (prefetch; 0 for a queue without it). */
const scriptReads = (): number => (queue as { _prefetchReads?: number })._prefetchReads ?? 0;
let readsAtGo = 0;
for (let line = await command(); ; line = await command()) {
  if (line === 'go') {
    cpu = process.cpuUsage();
    readsAtGo = scriptReads();
    if (spec.role === 'producer') {
      const report = fresh();
      await produceCycles(queue, { producers: spec.concurrency, jobs: spec.jobs, idPrefix: spec.idPrefix }, report);
      const used = process.cpuUsage(cpu);
      console.log(`done ${JSON.stringify({ ...report, cpuUs: used.user + used.system })}`);
    }
  } else if (line === 'stop') {
    const used = cpu ? process.cpuUsage(cpu) : { user: 0, system: 0 };
    stop.abort(new Error('stop'));
    await consumers;
    await queue.close();
    console.log(`cpu ${JSON.stringify({ cpuUs: used.user + used.system, scriptReads: scriptReads() - readsAtGo })}`);
    process.exit(0);
  }
}
