/**
 * Interleaved rounds with every contender in a process of its own.
 *
 * In one process, contenders share the engine's feedback: code that several of them run
 * (a library's own helpers, or two configurations of the same policy) is optimised for all
 * of their object shapes at once, so a contender is slower for having had neighbours. A
 * service runs one configuration per call site; to measure that, each contender here is
 * built in its own child process, warmed up there, and timed there in batches, while the
 * parent runs the rounds in lockstep: every round runs each contender's batch once, one at
 * a time, in a rotating order, so load from other tenants of the machine falls on all of
 * them alike. Reported per contender: CPU time per call of its own process (median round),
 * wall time, and heap bytes allocated per call.
 *
 * Timing runs with the engine's default young generation: a large one (as heap-byte
 * counting needs) spreads allocations over more memory than the caches hold and slows
 * every allocating contender. Heap bytes are then counted in a second process per
 * contender, whose young generation is fixed at 64 MB so that no collection lands inside
 * a counted batch.
 *
 * A contenders module exports `build(name)`, returning the operation to time (and a
 * `close` to release it); the same module lists the names, so parent and children agree.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bytesPerCall, median, timeBatchAsync } from './measure.ts';

/** What a contenders module's `build(name)` returns. */
export interface Contender {
  /** One call, awaited one at a time. */
  op: () => Promise<unknown>;
  /** Releases what the contender holds (timers, listeners). */
  close?: () => void;
}

/** A contenders module: `build(name)` makes the named contender. */
export interface ContendersModule {
  build(name: string): Contender | Promise<Contender>;
}

/** Figures of one contender, measured in its own process. */
export interface IsolatedResult {
  /** CPU time of its process per call, ns (median round). */
  cpuNs: number;
  /** Wall time per call, ns (median round). */
  wallNs: number;
  /** Heap bytes allocated per call (median of batches after a full GC). */
  bytes: number;
}

type Request = { cmd: 'batch'; iterations: number } | { cmd: 'bytes' } | { cmd: 'exit' };
type Reply = { ready: true } | { cpuNs: number; wallNs: number } | { bytes: number } | { error: string };

/**
 * Times the contenders `names` of `moduleUrl` (a contenders module), each in its own
 * process, in `rounds` interleaved rounds of `iterations` sequential calls.
 */
export async function interleavedIsolated(
  moduleUrl: string,
  names: readonly string[],
  { iterations = 10_000, rounds = 11 }: { iterations?: number; rounds?: number } = {},
): Promise<Map<string, IsolatedResult>> {
  const timing = process.execArgv.filter((arg) => !arg.includes('semi-space-size'));
  const counting = [...timing, '--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64'];
  const children = names.map((name) => new Child(moduleUrl, name, iterations, timing));
  try {
    await Promise.all(children.map((c) => c.ready));
    const cpu = names.map((): number[] => []);
    const wall = names.map((): number[] => []);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < children.length; k++) {
        const i = (k + round) % children.length;
        const reply = (await (children[i] as Child).ask({ cmd: 'batch', iterations })) as { cpuNs: number; wallNs: number };
        (cpu[i] as number[]).push(reply.cpuNs / iterations);
        (wall[i] as number[]).push(reply.wallNs / iterations);
      }
    }
    for (const child of children) child.close();
    const results = new Map<string, IsolatedResult>();
    for (let i = 0; i < children.length; i++) {
      const counter = new Child(moduleUrl, names[i] as string, iterations, counting);
      try {
        await counter.ready;
        const { bytes } = (await counter.ask({ cmd: 'bytes' })) as { bytes: number };
        results.set(names[i] as string, { cpuNs: median(cpu[i] as number[]), wallNs: median(wall[i] as number[]), bytes });
      } finally {
        counter.close();
      }
    }
    return results;
  } finally {
    for (const child of children) child.close();
  }
}

/** One contender's process, driven one request at a time. */
class Child {
  readonly ready: Promise<unknown>;
  readonly #process: ChildProcess;
  #pending: { resolve: (reply: Reply) => void; reject: (error: Error) => void } | undefined;

  constructor(moduleUrl: string, name: string, warmup: number, execArgv: readonly string[]) {
    this.#process = fork(fileURLToPath(import.meta.url), [moduleUrl, name, String(warmup)], {
      execArgv: [...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#process.on('message', (reply: Reply) => {
      const pending = this.#pending;
      this.#pending = undefined;
      if ('error' in reply) pending?.reject(new Error(`contender ${JSON.stringify(name)}: ${reply.error}`));
      else pending?.resolve(reply);
    });
    this.#process.on('exit', (code) => {
      this.#pending?.reject(new Error(`contender ${JSON.stringify(name)} exited (${code})`));
      this.#pending = undefined;
    });
    this.ready = this.#wait();
  }

  ask(request: Request): Promise<Reply> {
    const reply = this.#wait();
    this.#process.send(request);
    return reply;
  }

  close(): void {
    // Ends by itself on 'exit'; killed if it cannot be told.
    if (this.#process.connected) this.#process.send({ cmd: 'exit' } satisfies Request);
    else if (this.#process.exitCode === null) this.#process.kill();
  }

  #wait(): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      this.#pending = { resolve, reject };
    });
  }
}

/** Child side: build the contender, warm it up, then answer the parent's requests. */
async function serve(moduleUrl: string, name: string, warmup: number): Promise<void> {
  // A parent that went away (it failed, or was stopped) ends this process too.
  process.on('disconnect', () => process.exit(0));
  const send = (reply: Reply): void => {
    if (process.connected) process.send?.(reply, undefined, undefined, () => undefined);
  };
  let contender: Contender;
  try {
    const module = (await import(moduleUrl)) as ContendersModule;
    contender = await module.build(name);
    const { op } = contender;
    for (let i = 0; i < warmup * 2; i++) await op();
  } catch (error) {
    send({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  }
  const { op } = contender;
  process.on('message', async (request: Request) => {
    try {
      if (request.cmd === 'batch') {
        const t = await timeBatchAsync(async () => {
          for (let i = 0; i < request.iterations; i++) await op();
        });
        send(t);
      } else if (request.cmd === 'bytes') {
        send({ bytes: await bytesPerCall(op) });
      } else {
        contender.close?.();
        process.disconnect();
        process.exit(0);
      }
    } catch (error) {
      send({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
  });
  send({ ready: true });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send !== undefined) {
  const [moduleUrl, name, warmup] = process.argv.slice(2) as [string, string, string];
  await serve(moduleUrl, name, Number(warmup));
}

/** The `file:` URL of a module path, for {@link interleavedIsolated}. */
export function moduleUrl(path: string): string {
  return pathToFileURL(path).href;
}
