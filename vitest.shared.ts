import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import type { Reporter } from 'vitest/reporters';

/**
 * Where `npm test` collects each workspace's JSON report, to print one closing line
 * (passed, failed, skipped) for the whole run: see `scripts/run-tests.ts`.
 */
const reportDir = process.env.VITEST_JSON_REPORT_DIR;
const workspace = (): string => (JSON.parse(readFileSync('package.json', 'utf8')) as { name: string }).name.replace(/[@/]/g, '_');

/**
 * Writes the run's unhandled errors (which fail a run whose tests all passed, and which the
 * JSON report leaves out) beside the report, for the closing summary to print.
 */
const unhandledErrors = (file: string): Reporter => ({
  onTestRunEnd(_modules, errors) {
    if (errors.length === 0) return;
    const text = errors.map((e) => e.stack ?? `${e.name ?? 'Error'}: ${e.message ?? ''}`).join('\n\n');
    writeFileSync(file, `${text}\n`);
  },
});

/**
 * One test configuration for every workspace. The `@ballast/source` export condition
 * makes imports of `@ballast/*` resolve to their TypeScript sources, so tests never
 * depend on a stale build.
 */
export default defineConfig({
  resolve: { conditions: ['@ballast/source', 'module', 'node', 'import', 'default'] },
  // Vitest passes the SSR conditions to Node as `--conditions` flags for external
  // packages, so `import` here would make Node's `require` pick a dual package's ESM
  // entry (pg → pg-pool breaks): Vite adds `import`/`require` itself per import.
  ssr: { resolve: { conditions: ['@ballast/source', 'node', 'development|production'], externalConditions: ['@ballast/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    restoreMocks: true,
    unstubEnvs: true,
    ...(reportDir
      ? {
          reporters: ['default', 'json', unhandledErrors(join(reportDir, `${workspace()}.${process.pid}.errors.txt`))],
          outputFile: { json: join(reportDir, `${workspace()}.${process.pid}.json`) },
        }
      : {}),
  },
});
