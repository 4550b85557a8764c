import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('process exit', () => {
  it('a policy left open after its calls does not keep the process alive', () => {
    // The deadline of the last call is 60 s away on the policy's shared timer, which is unref'd.
    const script = `
      import { RetryPolicy } from '@ballast/retry';
      const policy = new RetryPolicy({ deadlineMs: 60_000, timeoutMs: 30_000 });
      console.log(await policy.execute(async ({ signal }) => (signal.aborted ? 'aborted' : 'done')));
    `;
    const child = spawnSync(process.execPath, ['--conditions=@ballast/source', '--input-type=module', '-e', script], {
      cwd: import.meta.dirname,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(child.stderr).toBe('');
    expect(child.stdout.trim()).toBe('done');
    expect(child.status).toBe(0);
  });
});
