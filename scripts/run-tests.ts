/**
 * `npm test`: every workspace's tests through turbo, then one closing line for the whole
 * run — passed, failed and skipped — summed from the JSON report each workspace's vitest
 * writes (see `vitest.shared.ts`). It fails when a test fails, when a workspace with a
 * `test` script wrote no report (it crashed or found no test), and, under CI, when any
 * test was skipped: whatever a test needs, CI installs (`scripts/ensure-system-deps.ts`).
 *
 * Usage: node scripts/run-tests.ts [turbo option...]   e.g. `npm test -- --filter=@ballast/retry`
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, workspaces } from './lib/workspaces.ts';

const root = repoRoot;
const reportDir = join(root, '.test-results');
rmSync(reportDir, { recursive: true, force: true });
mkdirSync(reportDir, { recursive: true });

const turbo = spawnSync('npx', ['turbo', 'run', 'test', '--concurrency=2', '--continue', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, VITEST_JSON_REPORT_DIR: reportDir },
});

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: Array<{ name: string; assertionResults: Array<{ fullName: string; status: string }> }>;
}

/** Reports by file: `<workspace>.<pid>.json`, one per vitest run (a workspace may run several). */
const reports = new Map<string, Report>();
for (const file of readdirSync(reportDir)) {
  reports.set(file, JSON.parse(readFileSync(join(reportDir, file), 'utf8')) as Report);
}

const filtered = process.argv.slice(2).some((a) => a.startsWith('--filter') || a.startsWith('-F'));
const expected = workspaces(root).filter((w) => w.scripts.test !== undefined);
const reported = new Set([...reports.keys()].map((file) => file.replace(/\.\d+\.json$/, '')));
const silent = filtered ? [] : expected.filter((w) => !reported.has(w.name.replace(/[@/]/g, '_'))).map((w) => w.name);

let passed = 0;
let failed = 0;
const skipped: string[] = [];
for (const report of reports.values()) {
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  for (const file of report.testResults) {
    for (const test of file.assertionResults) {
      if (test.status !== 'passed' && test.status !== 'failed') skipped.push(`${file.name.replace(`${root}/`, '')} › ${test.fullName}`);
    }
  }
}

const ci = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
console.log('');
for (const name of skipped) console.log(`skipped: ${name}`);
for (const name of silent) console.log(`no test report from ${name} (it crashed, or found no test)`);
console.log(
  `Tests: ${passed} passed, ${failed} failed, ${skipped.length} skipped (${reported.size} workspaces, ${reports.size} vitest runs)`,
);

const ok = turbo.status === 0 && failed === 0 && silent.length === 0 && passed > 0 && !(ci && skipped.length > 0);
if (ci && skipped.length > 0)
  console.error('CI runs every test: a skipped test means a missing dependency (add it to scripts/ensure-system-deps.ts).');
process.exit(ok ? 0 : 1);
