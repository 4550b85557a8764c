import { type ChildProcess, spawn } from 'node:child_process';
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
