/**
 * Runs the queue's load in several processes (see `load.ts`): producer processes and
 * consumer processes, each with its own queue handle, started and measured together.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { CycleReport } from '@ballast/app-queue/testing';
import type { LoadSpec } from './load.ts';

const script = join(dirname(fileURLToPath(import.meta.url)), 'load.ts');

/** How a load is spread over processes. */
export interface ProcessShape {
  producerProcesses: number;
  producersPerProcess: number;
  consumerProcesses: number;
  consumersPerProcess: number;
}

/** Options of {@link runLoad}. */
export interface LoadOptions extends ProcessShape {
  /** Module exporting the `RedisQueue` to run (the baseline's), or undefined for the queue now. */
  module?: string;
  /** Queue options every process shares; each adds its own `member`. */
  options: Record<string, unknown>;
  /** Jobs measured, over all producer processes. */
  jobs: number;
  /** Full cycles each producer process runs before measuring. @default 200 */
  warmup?: number;
  /** Job id prefix (unique per run). */
  idPrefix: string;
  /** Runs when every process is ready, right before measuring (reset counters here). */
  before?: () => Promise<void>;
  /** Runs once every measured job's result was read, before the processes stop. */
  after?: () => Promise<void>;
}

/** What {@link runLoad} measured. */
export interface LoadReport {
  acknowledged: number;
  refused: number;
  /** From `go` to the last producer process done, ms. */
  elapsedMs: number;
  ackMs: number[];
  cycleMs: number[];
  /** CPU time of the load processes while measuring, µs (producers until done, consumers until stopped). */
  nodeCpuUs: number;
  /** `XREADGROUP`s the consumer processes' FINISH calls ran inside the script (prefetch). */
  scriptReads: number;
}

interface Child {
  proc: ChildProcess;
  next(prefix: string): Promise<string>;
}

function start(spec: LoadSpec): Child {
  const proc = spawn(process.execPath, ['--conditions=@ballast/source', script, JSON.stringify(spec)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiting: Array<{ prefix: string; resolve: (line: string) => void; reject: (error: Error) => void }> = [];
  const deliver = (): void => {
    for (let i = 0; i < waiting.length; i++) {
      const w = waiting[i] as (typeof waiting)[number];
      const at = lines.findIndex((line) => line.startsWith(w.prefix));
      if (at < 0) continue;
      const [line] = lines.splice(at, 1);
      waiting.splice(i--, 1);
      w.resolve((line as string).slice(w.prefix.length).trim());
    }
  };
  createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    lines.push(line);
    deliver();
  });
  proc.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`load process (${spec.role}) exited with ${code} before "${w.prefix}"`));
  });
  return {
    proc,
    next: (prefix) =>
      new Promise((resolve, reject) => {
        if (proc.exitCode !== null) reject(new Error(`load process (${spec.role}) exited with ${proc.exitCode}`));
        waiting.push({ prefix, resolve, reject });
        deliver();
      }),
  };
}

/** Starts the processes, measures `jobs` full cycles, stops them. */
export async function runLoad(o: LoadOptions): Promise<LoadReport> {
  const share = Math.ceil(o.jobs / o.producerProcesses);
  const spec = (role: LoadSpec['role'], i: number): LoadSpec => ({
    role,
    ...(o.module ? { module: o.module } : {}),
    options: { ...o.options, member: `${o.idPrefix}-${role}-${i}` },
    concurrency: role === 'producer' ? o.producersPerProcess : o.consumersPerProcess,
    jobs: share,
    warmup: o.warmup ?? 200,
    idPrefix: `${o.idPrefix}-${i}-`,
  });
  const consumers = Array.from({ length: o.consumerProcesses }, (_, i) => start(spec('consumer', i)));
  const producers = Array.from({ length: o.producerProcesses }, (_, i) => start(spec('producer', i)));
  const all = [...consumers, ...producers];
  const kill = setTimeout(() => {
    for (const c of all) c.proc.kill('SIGKILL');
  }, 600_000);
  try {
    await Promise.all(all.map((c) => c.next('ready')));
    await o.before?.();
    const started = performance.now();
    for (const c of all) c.proc.stdin?.write('go\n');
    const reports = (await Promise.all(producers.map((c) => c.next('done')))).map(
      (line) => JSON.parse(line) as CycleReport & { cpuUs: number },
    );
    const elapsedMs = performance.now() - started;
    await o.after?.();
    for (const c of all) c.proc.stdin?.write('stop\n');
    const consumerLines = (await Promise.all(consumers.map((c) => c.next('cpu')))).map(
      (line) => JSON.parse(line) as { cpuUs: number; scriptReads?: number },
    );
    const consumerCpu = consumerLines.map((l) => l.cpuUs);
    await Promise.all(all.map((c) => (c.proc.exitCode === null ? new Promise((r) => c.proc.once('exit', r)) : undefined)));
    return {
      acknowledged: reports.reduce((n, r) => n + r.acknowledged, 0),
      refused: reports.reduce((n, r) => n + r.refused, 0),
      elapsedMs,
      ackMs: reports.flatMap((r) => r.ackMs),
      cycleMs: reports.flatMap((r) => r.cycleMs),
      nodeCpuUs: reports.reduce((n, r) => n + r.cpuUs, 0) + consumerCpu.reduce((a, b) => a + b, 0),
      scriptReads: consumerLines.reduce((n, l) => n + (l.scriptReads ?? 0), 0),
    };
  } finally {
    clearTimeout(kill);
    for (const c of all) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  }
}
