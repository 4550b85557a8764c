/**
 * Service processes as the distributed launcher runs them: each service its own Node
 * process started from its entry point, configured only through `BALLAST_*` variables,
 * supervised (restarted when it dies unasked, as a process manager would), and never
 * outliving the launcher — a {@link ProcessGuard} stops every process it knows of when
 * the launcher dies, even by SIGKILL.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Emitter } from '@ballast/common';

/** The repository root (entry points are given relative to it). */
export const REPO_ROOT: string = fileURLToPath(new URL('../../../', import.meta.url));

/** A kind of Node service the launcher starts. */
export type NodeServiceKind = 'api' | 'gateway' | 'worker' | 'identity' | 'usage-shipper';

/** Each kind of Node service, its entry point (relative to the repository root) and Node flags. */
export const NODE_SERVICES: Readonly<Record<NodeServiceKind, { main: string; flags: readonly string[] }>> = {
  api: { main: 'apps/api/src/main.ts', flags: ['--initial-old-space-size=128'] },
  gateway: { main: 'apps/gateway/src/main.ts', flags: ['--initial-old-space-size=128'] },
  worker: { main: 'apps/worker/src/main.ts', flags: ['--initial-old-space-size=128'] },
  identity: { main: 'apps/identity/src/main.ts', flags: [] },
  'usage-shipper': { main: 'apps/usage/src/cli/shipper.ts', flags: [] },
};

/** Events of a {@link ServiceProcess}. */
export interface ServiceEvents {
  /** The process printed its start line (first start and every restart). */
  ready: { pid: number; info: Record<string, unknown> };
  /** The process exited; `expected` when {@link ServiceProcess.stop} asked for it. */
  exit: { pid: number; code: number | null; signal: NodeJS.Signals | null; expected: boolean };
  /** A restart after an unasked exit failed (it is tried again later). */
  restartFailed: { error: Error };
}

/** One supervised service process. */
export interface ServiceProcess {
  readonly name: string;
  readonly kind: NodeServiceKind;
  /** The variables it was started with (besides the inherited non-Ballast environment). */
  readonly env: Readonly<Record<string, string>>;
  /** The current process. */
  readonly proc: ChildProcess;
  /** The current process's pid. */
  readonly pid: number;
  /** The JSON line the service printed once it listened (`url`, `ops`, `port`…), from its latest start. */
  readonly info: Record<string, unknown>;
  /** True while the current process has not exited. */
  readonly running: boolean;
  /** Starts after unasked exits so far. */
  readonly restarts: number;
  /** Restart the process when it exits unasked. @default the `restart` option */
  autoRestart: boolean;
  readonly events: Emitter<ServiceEvents>;
  /** The end of what it wrote to stderr (its log), up to 64 KiB. */
  log(): string;
  /** Sends `signal` to the current process (SIGKILL, SIGSTOP, SIGCONT…). */
  signal(signal: NodeJS.Signals): void;
  /** Starts it again (after an exit, or stops the current process first); resolves once it printed its start line. */
  restart(): Promise<void>;
  /** SIGCONT and SIGTERM, then SIGKILL if it has not exited within `graceMs`; no restart follows. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@link spawnService}. */
export interface SpawnServiceOptions {
  /** Name in logs and errors. @default the kind */
  name?: string;
  /** How long a start may take before it is given up. @default 60000 */
  startTimeoutMs?: number;
  /** Restart when the process exits without being asked to. @default false */
  restart?: boolean;
  /** Wait before a restart, ms; doubled after each start that fails, up to 10 s. @default 1000 */
  restartDelayMs?: number;
  /** Appends the service's stderr to this file (its log), besides the in-memory tail. */
  logFile?: string;
  /** Tracks the process's pid, so it is stopped if this process dies. */
  guard?: ProcessGuard;
}

const LOG_TAIL = 64 * 1024;

/**
 * Starts the service `kind` with `env` added to this process's environment (whose own
 * `BALLAST_*` variables are left out: each service gets only what it is given); resolves
 * once it has printed its start line (a JSON object on stdout).
 */
export async function spawnService(
  kind: NodeServiceKind,
  env: Record<string, string>,
  options: SpawnServiceOptions | number = {},
): Promise<ServiceProcess> {
  const o = typeof options === 'number' ? { startTimeoutMs: options } : options;
  const service = new Supervised(kind, env, o);
  await service.start();
  return service;
}

class Supervised implements ServiceProcess {
  readonly name: string;
  readonly kind: NodeServiceKind;
  readonly env: Readonly<Record<string, string>>;
  readonly events = new Emitter<ServiceEvents>();
  autoRestart: boolean;
  restarts = 0;
  info: Record<string, unknown> = {};
  #proc: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stopping = false;
  #tail = '';
  #delayMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #options: SpawnServiceOptions;

  constructor(kind: NodeServiceKind, env: Record<string, string>, options: SpawnServiceOptions) {
    this.kind = kind;
    this.name = options.name ?? kind;
    this.env = { BALLAST_LOG_LEVEL: 'warn', ...env };
    this.autoRestart = options.restart ?? false;
    this.#options = options;
    this.#delayMs = options.restartDelayMs ?? 1000;
  }

  get proc(): ChildProcess {
    if (!this.#proc) throw new Error(`${this.name} has not started`);
    return this.#proc;
  }

  get pid(): number {
    return this.#proc?.pid ?? -1;
  }

  get running(): boolean {
    return this.#proc !== undefined && this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  log(): string {
    return this.#tail;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.#proc?.kill(signal);
  }

  async start(): Promise<void> {
    const { main, flags } = NODE_SERVICES[this.kind];
    const proc = spawn(process.execPath, [...flags, '--conditions=@ballast/source', join(REPO_ROOT, main)], {
      env: { ...withoutBallast(process.env), ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a Ctrl-C at the terminal reaches the launcher alone, which
      // stops the services in order.
      detached: true,
    });
    this.#proc = proc;
    const pid = proc.pid;
    if (pid !== undefined) this.#options.guard?.track(pid);
    proc.stderr?.on('data', (chunk: Buffer) => this.#stderr(chunk));
    this.#exited = new Promise<void>((resolve) =>
      proc.once('exit', (code, signal) => {
        if (pid !== undefined) this.#options.guard?.untrack(pid);
        this.#onExit(pid ?? -1, code, signal);
        resolve();
      }),
    );
    this.info = await this.#startLine(proc);
    this.events.emit('ready', { pid: pid ?? -1, info: this.info });
  }

  async restart(): Promise<void> {
    clearTimeout(this.#timer);
    if (this.running) {
      const auto = this.autoRestart;
      this.autoRestart = false;
      this.#stopping = true;
      this.signal('SIGCONT');
      this.signal('SIGKILL');
      await this.#exited;
      this.autoRestart = auto;
    }
    this.#stopping = false;
    await this.start();
  }

  async stop(graceMs = 5000): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    if (!this.running) return;
    this.signal('SIGCONT'); // a paused process cannot handle SIGTERM
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(timer);
  }

  #stderr(chunk: Buffer): void {
    this.#tail = (this.#tail + chunk.toString()).slice(-LOG_TAIL);
    if (this.#options.logFile) {
      try {
        appendFileSync(this.#options.logFile, chunk);
      } catch {
        // The log directory is gone (the launcher is stopping): the tail keeps it.
      }
    }
  }

  #onExit(pid: number, code: number | null, signal: NodeJS.Signals | null): void {
    const expected = this.#stopping;
    this.events.emit('exit', { pid, code, signal, expected });
    if (expected || !this.autoRestart) return;
    this.#timer = setTimeout(() => {
      if (this.#stopping || this.running || !this.autoRestart) return;
      this.restarts++;
      this.start().then(
        () => {
          this.#delayMs = this.#options.restartDelayMs ?? 1000;
        },
        (error: Error) => {
          this.#delayMs = Math.min(10_000, this.#delayMs * 2);
          this.events.emit('restartFailed', { error });
        },
      );
    }, this.#delayMs);
    this.#timer.unref();
  }

  #startLine(proc: ChildProcess): Promise<Record<string, unknown>> {
    const timeoutMs = this.#options.startTimeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      let stdout = '';
      const fail = (error: Error): void => {
        cleanup();
        reject(error);
      };
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        fail(new Error(`${this.name} did not start within ${timeoutMs} ms:\n${this.#tail}`));
      }, timeoutMs);
      const onData = (chunk: Buffer): void => {
        stdout += chunk.toString();
        const end = stdout.indexOf('\n');
        if (end < 0) return;
        const line = stdout.slice(0, end);
        if (!line.startsWith('{')) {
          stdout = stdout.slice(end + 1);
          return;
        }
        cleanup();
        try {
          resolve(JSON.parse(line) as Record<string, unknown>);
        } catch {
          reject(new Error(`${this.name} printed a start line that is not JSON: ${line}`));
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
        fail(new Error(`${this.name} exited (${code ?? signal}) before it started:\n${this.#tail}`));
      const cleanup = (): void => {
        clearTimeout(timer);
        proc.stdout?.off('data', onData);
        proc.off('exit', onExit);
        proc.stdout?.resume(); // later lines (a shipper's progress) are read and dropped
      };
      proc.stdout?.on('data', onData);
      proc.once('exit', onExit);
    });
  }
}

/** The environment without this process's own `BALLAST_*` variables. */
function withoutBallast(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('BALLAST_')));
}

/**
 * The last line of defence against processes outliving the launcher: one detached shell
 * that waits for the launcher to die — however it dies, SIGKILL included — then sends
 * SIGTERM to every tracked process group, SIGKILL to what is left 10 s later, and removes
 * the registered directories. The launcher keeps the list current in a file the shell
 * reads only then. Redis and PostgreSQL started by `@ballast/test` have watchdogs of their own.
 */
export class ProcessGuard {
  readonly #file: string;
  readonly #pids = new Set<number>();
  readonly #dirs = new Set<string>();
  readonly #shell: ChildProcess;

  constructor(owner: number = process.pid) {
    this.#file = join(tmpdir(), `ballast-guard-${owner}-${Date.now().toString(36)}`);
    this.#write();
    const f = quote(this.#file);
    const alive = `a=0; for p in $(grep "^pid " ${f} | cut -c5-); do kill -0 "$p" 2>/dev/null && a=1; done`;
    const script = [
      `while kill -0 ${owner} 2>/dev/null && [ -e ${f} ]; do sleep 0.5; done`,
      `[ -e ${f} ] || exit 0`,
      `for p in $(grep "^pid " ${f} | cut -c5-); do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done`,
      `n=0; while [ $n -lt 100 ]; do ${alive}; [ $a = 0 ] && break; sleep 0.1; n=$((n+1)); done`,
      `for p in $(grep "^pid " ${f} | cut -c5-); do kill -KILL -- "-$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done`,
      `grep "^dir " ${f} | cut -c5- | while IFS= read -r d; do rm -rf "$d"; done`,
      `rm -f ${f}`,
    ].join('\n');
    this.#shell = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
    this.#shell.unref();
  }

  /** The guard shell's pid. */
  get pid(): number {
    return this.#shell.pid ?? -1;
  }

  /** Stops `pid` (and its process group) if the launcher dies. */
  track(pid: number): void {
    this.#pids.add(pid);
    this.#write();
  }

  untrack(pid: number): void {
    if (this.#pids.delete(pid)) this.#write();
  }

  /** Removes `dir` if the launcher dies (after the processes are stopped). */
  removeOnDeath(dir: string): void {
    this.#dirs.add(dir);
    this.#write();
  }

  /** Ends the guard: the launcher stopped everything itself. */
  close(): void {
    rmSync(this.#file, { force: true }); // the shell ends once its file is gone
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  #write(): void {
    const lines = [...[...this.#pids].map((p) => `pid ${p}`), ...[...this.#dirs].map((d) => `dir ${d}`)];
    writeFileSync(`${this.#file}.tmp`, `${lines.join('\n')}\n`);
    renameSync(`${this.#file}.tmp`, this.#file);
  }
}

function quote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** Resident set size of `pid` in bytes (Linux `/proc`), or undefined when it cannot be read. */
export function rssBytes(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
