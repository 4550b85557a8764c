/**
 * Release check (CI runs it; `npm run release`): builds the packages, then for every
 * published package checks what `npm publish` would send — public access with provenance,
 * the root's MIT LICENSE, a CHANGELOG.md, and every file its `exports` map points at — and
 * runs `npm publish --dry-run`. Publishing for real is `npx changeset publish`, from CI.
 *
 * Usage: node scripts/release.ts [--no-build]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { publishedPackages, repoRoot } from './lib/workspaces.ts';

if (!process.argv.includes('--no-build')) {
  execFileSync('npx', ['turbo', 'run', 'build', '--filter=./packages/*', '--output-logs=errors-only'], { cwd: repoRoot, stdio: 'inherit' });
}

/** Every file path an exports map points at (conditions nested to any depth). */
function targets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([condition, v]) => (condition === '@ballast/source' ? [] : targets(v)));
}

const license = readFileSync(join(repoRoot, 'LICENSE'), 'utf8');
const problems: string[] = [];
for (const pkg of publishedPackages(repoRoot)) {
  const fail = (message: string): void => void problems.push(`${pkg.name}: ${message}`);
  if (pkg.publishConfig?.access !== 'public') fail('publishConfig.access is not "public"');
  if (pkg.publishConfig?.provenance !== true) fail('publishConfig.provenance is not true');
  const licensePath = join(pkg.dir, 'LICENSE');
  if (!existsSync(licensePath) || readFileSync(licensePath, 'utf8') !== license)
    fail('LICENSE is missing or differs from the root LICENSE');
  if (!existsSync(join(pkg.dir, 'CHANGELOG.md'))) fail('no CHANGELOG.md');

  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: pkg.dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  ) as Array<{ files: Array<{ path: string }> }>;
  const files = new Set(packed!.files.map((f) => f.path));
  const expected = ['LICENSE', 'README.md', 'CHANGELOG.md', 'package.json', ...targets(pkg.exports).map((t) => t.replace(/^\.\//, ''))];
  for (const file of expected) if (!files.has(file)) fail(`the tarball lacks ${file}`);
  for (const file of files) if (/\.test(-d)?\.ts$|\/testing\//.test(file)) fail(`the tarball ships test code: ${file}`);

  const publish = spawnSync('npm', ['publish', '--dry-run', '--ignore-scripts'], { cwd: pkg.dir, encoding: 'utf8' });
  if (publish.status !== 0) fail(`npm publish --dry-run failed:\n${publish.stderr}`);
  else console.log(`${pkg.name}@${pkg.version}: ${files.size} files, npm publish --dry-run ok`);
}

if (problems.length > 0) {
  for (const p of problems) console.error(`✗ ${p}`);
  process.exit(1);
}
console.log('release: every package would publish with its LICENSE, CHANGELOG, provenance and public access.');
