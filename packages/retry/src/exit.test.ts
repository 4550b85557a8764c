import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** Runs an ES module that imports the package in a fresh Node.js process. */
function run(script: string) {
  return spawnSync(process.execPath, ['--conditions=@ballast/source', '--input-type=module', '-e', script], {
    cwd: import.meta.dirname,
    encoding: 'utf8',
    timeout: 20_000,
  });
}

describe('process exit', () => {
  it('a policy left open after its calls does not keep the process alive', () => {
    // The deadline of the last call is 60 s away on the policy's shared timer, which no longer holds the process.
    const child = run(`
      import { RetryPolicy } from '@ballast/retry';
      const policy = new RetryPolicy({ deadlineMs: 60_000, timeoutMs: 30_000 });
      console.log(await policy.execute(async ({ signal }) => (signal.aborted ? 'aborted' : 'done')));
    `);
    expect(child.stderr).toBe('');
    expect(child.stdout.trim()).toBe('done');
    expect(child.status).toBe(0);
  });

  it('an attempt hanging on nothing still times out: its timeout holds the process open', () => {
    const child = run(`
      import { retry } from '@ballast/retry';
      const error = await retry(() => new Promise(() => {}), { maxAttempts: 1, timeoutMs: 50 }).catch((e) => e);
      console.log(error.code);
    `);
    expect(child.stderr).toBe('');
    expect(child.stdout.trim()).toBe('ERR_BALLAST_TIMEOUT');
    expect(child.status).toBe(0);
  });
});
