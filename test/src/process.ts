import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
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
