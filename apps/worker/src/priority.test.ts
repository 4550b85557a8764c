import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { getPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { lowerPriority } from './priority.ts';

describe('lowerPriority', () => {
  it('names an invalid nice value, and leaves the process alone at 0', () => {
    expect(() => lowerPriority(20)).toThrow(/nice/);
    expect(() => lowerPriority(-1)).toThrow(/nice/);
    expect(() => lowerPriority(1.5)).toThrow(/nice/);
    expect(lowerPriority(0)).toBe(0);
  });

  it.runIf(existsSync('/proc/self/task'))(
    'lowers every thread of a process, and the threads it starts afterwards',
    { timeout: 60_000 },
    async () => {
      // A child process: it lowers itself, starts libuv's thread pool, and reports each thread's nice value.
      const script = `
        import { readdirSync, readFileSync } from 'node:fs';
        import { pbkdf2 } from 'node:crypto';
        const { lowerPriority } = await import(${JSON.stringify(fileURLToPath(new URL('./priority.ts', import.meta.url)))});
        lowerPriority(17);
        await Promise.all([1, 2, 3, 4].map(() => new Promise((r) => pbkdf2('x', 'y', 1000, 32, 'sha256', r))));
        const nice = readdirSync('/proc/self/task').map((tid) => {
          const stat = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8');
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
        });
        console.log(JSON.stringify(nice));`;
      const { stdout } = await promisify(execFile)(process.execPath, ['--conditions=@ballast/source', '--input-type=module', '-e', script]);
      const nice = JSON.parse(stdout) as number[];
      expect(nice.length).toBeGreaterThan(4); // the main thread, V8's, and libuv's pool
      // (A test run itself below 17 starts the child there: never raised, it stays.)
      expect(new Set(nice)).toEqual(new Set([Math.max(17, getPriority())]));
    },
  );
});
