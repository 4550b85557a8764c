/**
 * Child-process plumbing for the live comparison: free loopback ports, waiting for a
 * listener, CPU time of a process (to report throughput per core), and a registry that
 * stops every process it started, also when the run is interrupted.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

const started = new Set<ChildProcess>();

function stopAll(): void {
  for (const child of started) child.kill('SIGKILL');
}
process.once('exit', stopAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopAll();
    process.exit(130);
  });
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves once something accepts connections on 127.0.0.1:`port`, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 10_000, child?: ChildProcess): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`process exited with code ${child.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** A running child process and its captured stderr (for error messages). */
export interface Running {
  child: ChildProcess;
  stderr: () => string;
  stop(): Promise<void>;
}

function track(child: ChildProcess): Running {
  started.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      started.delete(child);
    },
  };
}

/** Starts a program (nginx, haproxy) with stdout ignored and stderr captured. */
export function startProgram(command: string, args: string[]): Running {
  return track(spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
}

/**
 * Forks a TypeScript module with Node (same conditions as this process) and waits for
 * its first IPC message, which the module sends once it is listening.
 */
export async function forkModule<T>(modulePath: string, args: string[]): Promise<{ running: Running; ready: T }> {
  const child = fork(modulePath, args, {
    execArgv: ['--conditions=@ballast/source'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const running = track(child);
  const ready = await new Promise<T>((resolve, reject) => {
    child.once('message', (message) => resolve(message as T));
    child.once('exit', (code) => reject(new Error(`${modulePath} exited with code ${code}: ${running.stderr()}`)));
  });
  return { running, ready };
}

/**
 * CPU seconds a process has used so far, all its threads, in nanosecond precision
 * (Linux `/proc/<pid>/task/<tid>/schedstat`). NaN where that is unavailable.
 */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    }
    return ns / 1e9;
  } catch {
    return Number.NaN;
  }
}
