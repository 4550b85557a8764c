import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

/** A service started as its own process, its stdout read line by line. */
export interface Service {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolves with the first line (already printed or still to come) that `match` accepts. */
  line(match: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** SIGKILL, as a crash: resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM, then waits for the exit code. */
  stop(): Promise<number | null>;
  /** Resolves with the exit code when the process ends by itself. */
  exited: Promise<number | null>;
}

/** Runs `script` (a path from the repository root) on this Node with the source condition and `env` added. */
export function startService(script: string, env: Record<string, string>, args: string[] = []): Service {
  const child = spawn(process.execPath, ['--conditions=@ballast/source', `${repo}${script}`, ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l !== ''));
    for (const w of waiters) w();
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const service: Service = {
    child,
    lines,
    exited,
    line(match, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = lines.find(match);
          if (found === undefined) return;
          cleanup();
          resolve(found);
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${script}: no matching line within ${timeoutMs} ms; stderr:\n${stderr}`));
        }, timeoutMs);
        const onExit = (): void => {
          check();
          cleanup();
          reject(new Error(`${script} exited before printing a matching line; stderr:\n${stderr}`));
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off('close', onExit);
        };
        waiters.add(check);
        child.once('close', onExit);
        check();
      });
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000); // a safety net: a graceful stop ships what is left
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return service;
}

/** Runs a command to completion; resolves with its exit code and output. */
export async function run(
  script: string,
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ code: number | null; stdout: string }> {
  const service = startService(script, env, args);
  const code = await service.exited;
  return { code, stdout: service.lines.join('\n') };
}
