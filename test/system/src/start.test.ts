/**
 * `npm start` as an operator runs it: the real script in its own processes (the
 * launcher and the system it re-launches with a larger heap), stopped by a signal to
 * the launcher alone, by the death of whatever started it, or ending by itself after
 * `--burst`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlive as alive } from '@ballast/test/process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, resize, smallJpeg } from './helpers.ts';

const script = fileURLToPath(new URL('../../../scripts/start.ts', import.meta.url));
const started: ChildProcess[] = [];
const pids: number[] = [];
// npm start keeps its data under its working directory (.ballast/identity, data/usage):
// each run gets a fresh temporary one, removed afterwards.
let workDir: string;
let runs = 0;

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), 'ballast-start-'));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

afterEach(() => {
  for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, 'SIGKILL');
  started.splice(0);
});

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((s) => Number(s.trim()))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

/** Spawns `command`, collecting its output; resolves with the process and a getter of everything printed. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): { proc: ChildProcess; output: () => string } {
  const cwd = join(workDir, String(++runs));
  mkdirSync(cwd);
  const proc = spawn(command, args, {
    cwd,
    env: { ...process.env, BALLAST_PORT: '0', BALLAST_IDENTITY_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(proc);
  if (proc.pid) pids.push(proc.pid);
  let text = '';
  proc.stdout?.on('data', (chunk) => {
    text += String(chunk);
  });
  proc.stderr?.on('data', (chunk) => {
    text += String(chunk);
  });
  return { proc, output: () => text };
}

async function gatewayUrl(output: () => string): Promise<string> {
  // The embedded identity (PGlite, PostgreSQL in WebAssembly) takes seconds to start, more on a busy machine.
  return await eventually('the gateway address', 240_000, async () => output().match(/gateway\s+(http:\/\/\S+)/)?.[1], 100);
}

describe('npm start', () => {
  it('serves, and stops gracefully on SIGINT sent to the launcher alone, leaving no process', { timeout: 300_000 }, async () => {
    const { proc, output } = run(process.execPath, ['--conditions=@ballast/source', script]);
    const url = await gatewayUrl(output);
    const system = childrenOf(proc.pid as number);
    expect(system).toHaveLength(1); // the re-launched system
    pids.push(...system);
    // Every request needs a key: npm start prints the demo tenant's.
    const key = await eventually('the demo key', 5000, async () => output().match(/BALLAST_KEY=(blst_\w+)/)?.[1], 50);
    const res = await resize(url, 'width=16', await smallJpeg(), {
      headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();

    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(output()).toContain('Stopping: finishing the jobs in progress');
    await eventually('the system process to end', 5000, async () => (system.every((pid) => !alive(pid)) ? true : undefined));
  });

  it('stops when what started it dies (npm killed)', { timeout: 300_000 }, async () => {
    // As npm runs it: through a shell that waits for it; killing the shell orphans it.
    const { proc, output } = run('sh', ['-c', `"${process.execPath}" --conditions=@ballast/source "${script}"; true`]);
    await gatewayUrl(output);
    const launcher = childrenOf(proc.pid as number);
    expect(launcher).toHaveLength(1);
    const system = launcher.flatMap(childrenOf);
    expect(system).toHaveLength(1);
    pids.push(...launcher, ...system);
    proc.kill('SIGKILL');
    await eventually(
      'every process to end',
      60_000,
      async () => ([...launcher, ...system].every((pid) => !alive(pid)) ? true : undefined),
      100,
    );
  });

  it('with --burst, sends real requests, prints percentiles and exits by itself', { timeout: 300_000 }, async () => {
    const { proc, output } = run(process.execPath, ['--conditions=@ballast/source', script, '--burst=8']);
    const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
    expect(code, output()).toBe(0);
    expect(output()).toContain('statuses   200: 8');
    expect(output()).toMatch(/latency\s+p50 [\d.]+ ms\s+p90 [\d.]+ ms\s+p99 [\d.]+ ms\s+p99\.9 [\d.]+ ms/);
  });
});
