/**
 * Fails when a TypeScript file in the repository is compiled by no `tsc -p` that
 * `npm run typecheck` runs: every test (and its `expectTypeOf` type tests), fixture,
 * benchmark, script and config file must be type-checked, wherever a workspace keeps
 * it (`src/`, `test/`, `scripts/`, ...).
 *
 * The projects are the root `tsconfig.json` and the `-p` of each workspace's
 * `typecheck` script; their files are the root files of each parsed tsconfig (its
 * `include`/`files`, as `tsc -p` reads them).
 *
 * Usage: node scripts/check-typecheck-coverage.ts
 */
import { execFileSync } from 'node:child_process';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { repoRoot, workspaces } from './lib/workspaces.ts';

const projects = [join(repoRoot, 'tsconfig.json')];
for (const w of workspaces(repoRoot)) {
  const script = w.scripts.typecheck;
  if (script === undefined) continue;
  const match = /tsc\b.*?(?:-p|--project)\s+(\S+)/.exec(script);
  if (match === null) throw new Error(`${w.path}: typecheck script ${JSON.stringify(script)} has no 'tsc -p <tsconfig>'`);
  projects.push(join(w.dir, match[1]!));
}

const covered = new Set<string>();
for (const project of projects) {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    project,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(`${project}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
      },
    },
  );
  for (const file of parsed?.fileNames ?? []) covered.add(relative(repoRoot, file));
}

const tracked = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts', '*.mts', '*.cts', '*.tsx'], {
  cwd: repoRoot,
  encoding: 'utf8',
})
  .split('\n')
  .filter((file) => file !== '');
const unchecked = tracked.filter((file) => !covered.has(file));

if (unchecked.length > 0) {
  console.error(
    `${unchecked.length} TypeScript file(s) no 'npm run typecheck' project compiles (add their folder to a tsconfig's include):`,
  );
  for (const file of unchecked) console.error(`  ${file}`);
  process.exit(1);
}
console.log(`typecheck coverage: all ${tracked.length} TypeScript files are compiled by ${projects.length} tsconfig projects.`);
