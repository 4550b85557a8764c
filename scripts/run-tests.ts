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
  testResults: Array<{
    name: string;
    status: string;
    message?: string;
    assertionResults: Array<{ fullName: string; status: string; failureMessages?: string[] }>;
  }>;
}

/** Reports by file: `<workspace>.<pid>.json`, one per vitest run (a workspace may run several). */
const reports = new Map<string, Report>();
/** Unhandled errors by file: `<workspace>.<pid>.errors.txt`, written only when a run had some. */
const unhandled = new Map<string, string>();
for (const file of readdirSync(reportDir)) {
  const text = readFileSync(join(reportDir, file), 'utf8');
  if (file.endsWith('.errors.txt')) unhandled.set(file.replace(/\.errors\.txt$/, ''), text);
  else reports.set(file, JSON.parse(text) as Report);
}

const filtered = process.argv.slice(2).some((a) => a.startsWith('--filter') || a.startsWith('-F'));
const expected = workspaces(root).filter((w) => w.scripts.test !== undefined);
const reported = new Set([...reports.keys()].map((file) => file.replace(/\.\d+\.json$/, '')));
const silent = filtered ? [] : expected.filter((w) => !reported.has(w.name.replace(/[@/]/g, '_'))).map((w) => w.name);

let passed = 0;
let failed = 0;
const skipped: string[] = [];
/** What failed, repeated at the end of a long log where it cannot be missed: tests, files, unhandled errors. */
const failures: string[] = [];
const excerpt = (text: string): string => text.split('\n').slice(0, 12).join('\n    ');
for (const report of reports.values()) {
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  for (const file of report.testResults) {
    const path = file.name.replace(`${root}/`, '');
    for (const test of file.assertionResults) {
      if (test.status === 'failed')
        failures.push(`failed: ${path} › ${test.fullName}\n    ${excerpt(test.failureMessages?.join('\n') ?? '')}`);
      else if (test.status !== 'passed') skipped.push(`${path} › ${test.fullName}`);
    }
    if (file.status === 'failed' && file.assertionResults.every((t) => t.status !== 'failed'))
      failures.push(`failed: ${path} (outside its tests)\n    ${excerpt(file.message ?? '')}`);
  }
}
for (const [run, text] of unhandled) failures.push(`unhandled errors in ${run}:\n    ${excerpt(text)}`);

const ci = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
console.log('');
for (const name of skipped) console.log(`skipped: ${name}`);
for (const failure of failures) console.log(failure);
for (const name of silent) console.log(`no test report from ${name} (it crashed, or found no test)`);
console.log(
  `Tests: ${passed} passed, ${failed} failed, ${skipped.length} skipped (${reported.size} workspaces, ${reports.size} vitest runs)`,
);

const ok = turbo.status === 0 && failed === 0 && unhandled.size === 0 && silent.length === 0 && passed > 0 && !(ci && skipped.length > 0);
if (ci && skipped.length > 0)
  console.error('CI runs every test: a skipped test means a missing dependency (add it to scripts/ensure-system-deps.ts).');
process.exit(ok ? 0 : 1);
