/**
 * `npm run start:distributed`'s launcher killed with SIGKILL — no chance to stop anything
 * itself — leaves no process of the deployment behind: its guard stops every service, and
 * Redis and PostgreSQL stop with their own watchdogs.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAlive } from '@ballast/test/process';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from './helpers.ts';

const script = fileURLToPath(new URL('../../../scripts/start-distributed.ts', import.meta.url));
let pids: number[] = [];

afterEach(() => {
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
});

describe('npm run start:distributed', () => {
  it('leaves nothing behind when the launcher is killed with SIGKILL', { timeout: 400_000 }, async () => {
    const launcher = spawn(process.execPath, ['--conditions=@ballast/source', script, '--apis=2', '--workers=1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    launcher.stdout?.on('data', (c) => {
      output += String(c);
    });
    launcher.stderr?.on('data', (c) => {
      output += String(c);
    });
    await eventually('the deployment to be ready', 300_000, async () => {
      if (launcher.exitCode !== null) throw new Error(`the launcher exited: ${output}`);
      return output.includes('Ctrl-C to stop') ? true : undefined;
    });
    pids = [...output.matchAll(/ pid +(\d+) /g)].map((m) => Number(m[1]));
    const dir = /Logs: (\S+)\/logs\//.exec(output)?.[1] as string;
    // Redis ×6, PostgreSQL, identity, a worker and its shipper, two API servers, the gateway.
    expect(pids).toHaveLength(13);
    expect(pids.every(isAlive)).toBe(true);
    expect(existsSync(dir)).toBe(true);

    launcher.kill('SIGKILL');
    await eventually('every process of the deployment to exit', 60_000, async () => (pids.some(isAlive) ? undefined : true), 200);
    await eventually('its directory to be removed', 30_000, async () => (existsSync(dir) ? undefined : true), 200);
  });
});
