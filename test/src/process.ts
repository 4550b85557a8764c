import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';

/** True while a process with this pid exists (signal 0 checks without signalling). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every process's parent and state (`Z` for a zombie), from `ps`. */
function processTable(): Map<number, { ppid: number; state: string }> {
  const table = new Map<number, { ppid: number; state: string }>();
  const ps = spawnSync('ps', ['-A', '-o', 'pid=,ppid=,stat='], { encoding: 'utf8' });
  if (ps.status !== 0) throw new Error(`ps -A failed (exit ${ps.status ?? ps.signal}): ${ps.stderr || ps.error}`);
  for (const line of ps.stdout.split('\n')) {
    const [pid, ppid, state] = line.trim().split(/\s+/);
    if (pid && ppid && state) table.set(Number(pid), { ppid: Number(ppid), state });
  }
  return table;
}

/** The pids of every process below `pid` (children, their children, …), as `ps` lists them now. */
export function descendantsOf(pid: number): number[] {
  const table = processTable();
  const found: number[] = [];
  const queue = [pid];
  for (let parent = queue.shift(); parent !== undefined; parent = queue.shift()) {
    for (const [child, { ppid }] of table) {
      if (ppid === parent && !found.includes(child)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/**
 * Those of `pids` that are still running. A zombie (exited, not yet reaped by whichever
 * process adopted it) counts as gone: it holds no memory, file or socket any more.
 */
export function stillRunning(pids: readonly number[]): number[] {
  if (pids.length === 0) return [];
  const table = processTable();
  return pids.filter((pid) => {
    const entry = table.get(pid);
    return entry !== undefined && !entry.state.startsWith('Z');
  });
}

/** A free TCP port on `host`, as the kernel hands one out (a server may still race us to it: retry on EADDRINUSE). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Polls `check` every 50 ms until it returns true, or throws after `timeoutMs` naming
 * `what` and the last error `check` threw. An error whose message contains
 * `exited during start` ends the wait at once.
 */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
      if (error instanceof Error && error.message.includes('exited during start')) throw error;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
}

/** Options of {@link watchdog}. */
export interface WatchdogOptions {
  /** Signal sent first; SIGKILL follows after 5 s if the process is still there. @default 'KILL' */
  signal?: 'KILL' | 'TERM' | 'INT' | 'QUIT';
  /** A directory to remove once the process has exited. */
  removeDir?: string;
}

/**
 * Starts a tiny detached shell that stops `pid` once this (the test) process is gone,
 * then removes `removeDir` if given: the last line of defence when the test process
 * dies without running its exit handlers (a crash, SIGKILL, a timeout). It ends by
 * itself when `pid` exits first. Kill the returned process to stop watching.
 */
export function watchdog(pid: number, options: WatchdogOptions = {}): ChildProcess {
  const signal = options.signal ?? 'KILL';
  const stop =
    signal === 'KILL'
      ? `kill -9 ${pid} 2>/dev/null`
      : `kill -${signal} ${pid} 2>/dev/null; n=0; while kill -0 ${pid} 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done; kill -9 ${pid} 2>/dev/null`;
  const dir = options.removeDir;
  const cleanup =
    dir === undefined ? '' : `; while kill -0 ${pid} 2>/dev/null; do sleep 0.1; done; rm -rf '${dir.replaceAll("'", "'\\''")}'`;
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${pid} 2>/dev/null; do sleep 0.5; done; if ! kill -0 ${process.pid} 2>/dev/null; then ${stop}${cleanup}; fi`;
  const child = spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
  child.unref();
  return child;
}

/**
 * Runs `start(port)` on a free port of `host`, trying another when it fails (five ports in
 * all): another process may take a port between the probe and the server's bind. An error
 * `isFinal` accepts (a missing program) is thrown at once.
 */
export async function onFreePort<T>(
  host: string,
  start: (port: number) => Promise<T>,
  isFinal: (error: unknown) => boolean = () => false,
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort(host);
    try {
      return await start(port);
    } catch (error) {
      if (isFinal(error)) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

/** What every server the test helpers start tells about itself. */
export interface TestServer {
  /** The address it listens on. */
  readonly host: string;
  readonly port: number;
  /** Where to connect, as its clients take it. */
  readonly url: string;
  /** The server's pid (-1 before it started). */
  readonly pid: number;
  /** Its temporary working directory. */
  readonly dir: string;
  /** True until the server has exited. */
  readonly running: boolean;
}

/** Options of {@link superviseProcess}. */
export interface SuperviseOptions {
  /** What is started, for messages: `primary on 127.0.0.1:6379`. */
  what: string;
  /** Spawns the process (once per start). */
  spawn: () => ChildProcess;
  /** Whether the process answers yet; errors count as not yet. */
  ready: () => Promise<boolean>;
  /** How long to wait for `ready`, ms. */
  startTimeoutMs: number;
  /** What to add to `<what> exited during start` when the process exits before it is ready (where its log is, its last lines). */
  exitDetail?: () => string;
  /** The {@link watchdog} beside each run. @default { signal: 'KILL' } */
  watchdog?: WatchdogOptions;
  /**
   * Kills the process at once, as a crash would, given its pid and its exit; resolves when
   * it and whatever it started are gone. @default SIGKILL to the process, then its exit
   */
  crash?: (pid: number, exited: Promise<void>) => Promise<void>;
  /** A directory removed when the test process exits. */
  removeDirOnExit?: string;
}

/** A server process started, watched, crashed and stopped by {@link superviseProcess}. */
export interface SupervisedProcess {
  /** The pid of the current run, -1 before the first. */
  readonly pid: number;
  /** True from spawning until the process has exited. */
  readonly running: boolean;
  /** Spawns the process and waits until it is ready; kills it and throws if it is not ready in time. */
  start(): Promise<void>;
  /** Kills the process at once ({@link SuperviseOptions.crash}); resolves once it is gone. */
  crash(): Promise<void>;
  /** Sends `signal`, crashes the process if it is still there after `graceMs`, and resolves once it has exited. */
  stop(signal: NodeJS.Signals, graceMs: number): Promise<void>;
  /** Leaves it out of the exit handler's clean-up, once it was stopped for good. */
  forget(): void;
}

const supervised = new Set<{ readonly pid: number; readonly running: boolean; readonly dir: string | undefined }>();
let exitHookInstalled = false;

/**
 * Runs a server process for tests: each start spawns it beside a {@link watchdog} and waits
 * until it is ready; an `exit` handler kills every running one (and removes its
 * `removeDirOnExit`) when the test process ends.
 */
export function superviseProcess(options: SuperviseOptions): SupervisedProcess {
  let child: ChildProcess | undefined;
  let guard: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let running = false;
  const crash = async (): Promise<void> => {
    if (!running || child?.pid === undefined) return;
    if (options.crash) await options.crash(child.pid, exited);
    else {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const entry = {
    get pid() {
      return child?.pid ?? -1;
    },
    get running() {
      return running;
    },
    dir: options.removeDirOnExit,
  };
  const proc: SupervisedProcess = {
    get pid() {
      return entry.pid;
    },
    get running() {
      return running;
    },
    async start() {
      installExitHook();
      supervised.add(entry);
      const current = options.spawn();
      child = current;
      running = true;
      current.once('error', () => {
        running = false;
      });
      exited = new Promise<void>((resolve) => {
        current.once('exit', () => {
          running = false;
          guard?.kill('SIGKILL');
          resolve();
        });
      });
      if (current.pid === undefined) throw new Error(`could not start ${options.what}`);
      guard = watchdog(current.pid, options.watchdog);
      try {
        await waitFor(options.what, options.startTimeoutMs, async () => {
          if (!running) throw new Error(`${options.what} exited during start${options.exitDetail?.() ?? ''}`);
          return options.ready();
        });
      } catch (error) {
        await crash();
        throw error;
      }
    },
    crash,
    async stop(signal, graceMs) {
      if (!running || !child) return;
      child.kill(signal);
      let crashed: Promise<void> | undefined;
      const timer = setTimeout(() => {
        crashed = crash();
      }, graceMs);
      await exited;
      clearTimeout(timer);
      await crashed;
    },
    forget() {
      supervised.delete(entry);
    },
  };
  return proc;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const entry of supervised) {
      try {
        if (entry.running) process.kill(entry.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      try {
        if (entry.dir !== undefined) rmSync(entry.dir, { recursive: true, force: true });
      } catch {
        // The watchdog removes it once the process has exited.
      }
    }
  });
}
