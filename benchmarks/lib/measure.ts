import { loadavg } from 'node:os';

/**
 * Micro-benchmark timing. Measures a synchronous or asynchronous operation in
 * batches, after a warm-up, and reports nanoseconds per operation as the median of
 * several samples, so one noisy sample on a shared machine does not decide the figure.
 * Compare candidates measured in the same run; absolute figures move with the machine.
 */

export interface MeasureOptions {
  /** Operations per sample. @default 100_000 */
  iterations?: number;
  /** Samples taken; the median is reported. @default 7 */
  samples?: number;
  /** Warm-up operations before sampling. @default iterations */
  warmup?: number;
}

export interface Measurement {
  name: string;
  /** Median nanoseconds per operation. */
  nsPerOp: number;
  /** Operations per second at the median. */
  opsPerSec: number;
  /** Fastest and slowest sample, ns per operation. */
  minNs: number;
  maxNs: number;
}

/** Times a synchronous operation. `op(i)` receives the iteration number. */
export function measure(name: string, op: (i: number) => unknown, options: MeasureOptions = {}): Measurement {
  const iterations = options.iterations ?? 100_000;
  const samples = options.samples ?? 7;
  let sink: unknown;
  for (let i = 0; i < (options.warmup ?? iterations); i++) sink = op(i);
  const results: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) sink = op(i);
    results.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  keep(sink);
  return summarize(name, results);
}

/** Times an asynchronous operation, awaited one at a time. */
export async function measureAsync(name: string, op: (i: number) => Promise<unknown>, options: MeasureOptions = {}): Promise<Measurement> {
  const iterations = options.iterations ?? 20_000;
  const samples = options.samples ?? 7;
  for (let i = 0; i < (options.warmup ?? iterations); i++) await op(i);
  const results: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await op(i);
    results.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  return summarize(name, results);
}

/** Time spent on one batch of work, in nanoseconds. */
export interface BatchTime {
  /** CPU time of this process (user + system, GC included): on a shared machine, time spent waiting for a core is not counted. */
  cpuNs: number;
  /** Wall-clock time. */
  wallNs: number;
}

/**
 * Times one synchronous batch in CPU time and wall time. Divide by the batch size for
 * per-operation figures; take the {@link median} of several batches.
 */
export function timeBatch(run: () => void): BatchTime {
  const cpuStart = process.cpuUsage();
  const wallStart = process.hrtime.bigint();
  run();
  const wallNs = Number(process.hrtime.bigint() - wallStart);
  const used = process.cpuUsage(cpuStart);
  return { cpuNs: (used.user + used.system) * 1000, wallNs };
}

/** {@link timeBatch} for an asynchronous batch. */
export async function timeBatchAsync(run: () => Promise<void>): Promise<BatchTime> {
  const cpuStart = process.cpuUsage();
  const wallStart = process.hrtime.bigint();
  await run();
  const wallNs = Number(process.hrtime.bigint() - wallStart);
  const used = process.cpuUsage(cpuStart);
  return { cpuNs: (used.user + used.system) * 1000, wallNs };
}

/**
 * The median of the finite `values` (the mean of the middle two for an even count); NaN
 * when there are none. Non-finite values (a sample with no latency, say) are left out.
 */
export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const m = n >> 1;
  return n % 2 === 1 ? (sorted[m] as number) : ((sorted[m - 1] as number) + (sorted[m] as number)) / 2;
}

/** Heap used after a full collection (needs `--expose-gc`; the bench scripts pass it). */
export function heapUsed(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

function summarize(name: string, samples: number[]): Measurement {
  const nsPerOp = median(samples);
  return { name, nsPerOp, opsPerSec: 1e9 / nsPerOp, minNs: Math.min(...samples), maxNs: Math.max(...samples) };
}

let blackhole: unknown;
function keep(value: unknown): void {
  blackhole = value;
  if (blackhole === Symbol.for('never')) console.log(blackhole);
}

/** CPU and wall time per operation of one candidate, from {@link interleaved}. */
export interface PerCall {
  /** CPU time of this process per operation, ns (median round). */
  cpuNs: number;
  /** Wall time per operation, ns (median round). */
  wallNs: number;
}

/**
 * Times async candidates in interleaved rounds: every round runs each candidate once (in
 * a rotating order), so load from other processes falls on all of them alike; the median
 * round is reported. On a shared machine wall time mostly measures the other tenants, so
 * the figure to compare is the CPU time this process spends per call (`process.cpuUsage`,
 * user + system, GC included); the wall-clock median is kept beside it.
 */
export async function interleaved(
  candidates: ReadonlyArray<readonly [name: string, op: () => Promise<unknown>]>,
  { iterations = 20_000, rounds = 11 }: { iterations?: number; rounds?: number } = {},
): Promise<Map<string, PerCall>> {
  const cpu = new Map<string, number[]>(candidates.map(([name]) => [name, []]));
  const wall = new Map<string, number[]>(candidates.map(([name]) => [name, []]));
  for (const [, op] of candidates) for (let i = 0; i < iterations; i++) await op();
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < candidates.length; k++) {
      const [name, op] = candidates[(k + round) % candidates.length] as readonly [string, () => Promise<unknown>];
      const t = await timeBatchAsync(async () => {
        for (let i = 0; i < iterations; i++) await op();
      });
      wall.get(name)?.push(t.wallNs / iterations);
      cpu.get(name)?.push(t.cpuNs / iterations);
    }
  }
  return new Map(candidates.map(([name]) => [name, { cpuNs: median(cpu.get(name) ?? []), wallNs: median(wall.get(name) ?? []) }]));
}

/**
 * Heap bytes allocated per operation: the growth of the heap over a batch of sequential
 * operations that starts right after a full collection, median of several batches. Run
 * with a young generation large enough for one batch (`--max-semi-space-size=64`, as the
 * bench scripts do) so no scavenge lands inside it; a batch with a scavenge reads low,
 * and the median discards it. Needs `--expose-gc`.
 */
export async function bytesPerCall(
  op: () => Promise<unknown>,
  { calls = 2_000, batches = 9 }: { calls?: number; batches?: number } = {},
): Promise<number> {
  for (let i = 0; i < calls; i++) await op();
  const samples: number[] = [];
  for (let b = 0; b < batches; b++) {
    const before = heapUsed();
    for (let i = 0; i < calls; i++) await op();
    samples.push((process.memoryUsage().heapUsed - before) / calls);
  }
  return median(samples);
}

/** The system's 1-minute load average, for result files (shared machines are noisy). */
export function loadAverage(): number[] {
  return loadavg().map((l) => Number(l.toFixed(2)));
}
