/**
 * The packages as npm users receive them. Builds and packs every published package, then,
 * in projects created outside the repository:
 *
 * - installs the tarballs with npm's default (hoisted) layout, with npm's
 *   `--install-strategy=linked`, and with pnpm (fetched from the npm registry);
 * - imports every public entry (and subpath) as ESM and as CommonJS, and checks both expose
 *   the same names: every value the entry's source exports;
 * - type-checks a consumer that imports every entry and every symbol the READMEs import,
 *   under `moduleResolution` `node16` (ESM and CommonJS files) and `bundler`;
 * - in the strict layouts (linked, pnpm), checks that the packages' own dependencies cannot
 *   be imported from the project: what the READMEs import resolves through the packages.
 *
 * Usage: node scripts/consumer-test.ts [--no-build] [--keep] [--only=npm,linked,pnpm]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Entry, publicEntries } from './lib/exports.ts';
import { readmeImports } from './lib/readme-imports.ts';
import { publishedPackages, repoRoot } from './lib/workspaces.ts';

const args = process.argv.slice(2);
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const PNPM = 'pnpm@10';
const started = performance.now();
const work = mkdtempSync(join(tmpdir(), 'ballast-consumer-'));
const failures: string[] = [];

function run(command: string, commandArgs: string[], cwd: string): string {
  const result = spawnSync(command, commandArgs, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false' },
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${commandArgs.join(' ')} failed in ${cwd} (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}
const step = (message: string): void => console.log(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${message}`);

// 1. Build and pack.
if (!args.includes('--no-build')) {
  step('building the packages');
  execFileSync('npx', ['turbo', 'run', 'build', '--filter=./packages/*', '--output-logs=errors-only'], { cwd: repoRoot, stdio: 'inherit' });
}
const tarballs = join(work, 'tarballs');
mkdirSync(tarballs);
const packages = publishedPackages(repoRoot);
const tarball = new Map<string, string>();
for (const pkg of packages) {
  const [packed] = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tarballs], pkg.dir)) as Array<{
    filename: string;
  }>;
  tarball.set(pkg.name, join(tarballs, packed!.filename));
}
step(`packed ${tarball.size} packages into ${tarballs}`);

const entries = publicEntries();
const peers: Record<string, string> = {};
for (const pkg of packages) Object.assign(peers, pkg.peerDependencies ?? {});

// 2. The consumer's files.
const probe = (list: Entry[]): string =>
  [
    "import { createRequire } from 'node:module';",
    'const require = createRequire(import.meta.url);',
    'const out = {};',
    `for (const specifier of ${JSON.stringify(list.map((e) => e.specifier))}) {`,
    '  const esm = await import(specifier);',
    '  const cjs = require(specifier);',
    "  out[specifier] = { esm: Object.keys(esm).filter((k) => k !== 'default' && k !== 'module.exports').sort(), cjs: Object.keys(cjs).filter((k) => k !== '__esModule').sort() };",
    '}',
    'console.log(JSON.stringify(out));',
  ].join('\n');

const imports = readmeImports();
const consumerTs = [
  '// Every public entry, and every symbol the READMEs import, as a user writes it.',
  ...entries.map((e, i) => `import * as entry${i} from '${e.specifier}';`),
  ...imports.map((im, i) => `import { ${im.name} as readme${i} } from '${im.specifier}';`),
  `export const entries = [${entries.map((_, i) => `entry${i}`).join(', ')}];`,
  `export type ReadmeSymbols = [${imports.map((_, i) => `typeof readme${i}`).join(', ')}];`,
  '',
].join('\n');
// Type-only README names cannot be `typeof`: keep those as type references instead.
const isType = (im: (typeof imports)[number]): boolean => !entries.find((e) => e.specifier === im.specifier)?.values.has(im.name);
const consumer = consumerTs.replace(/typeof readme(\d+)/g, (whole, i: string) => (isType(imports[Number(i)]!) ? `readme${i}` : whole));
const consumerCts = [
  '// The same entries through require(), as a CommonJS user writes it.',
  ...entries.map((e, i) => `import entry${i} = require('${e.specifier}');`),
  `export const entries = [${entries.map((_, i) => `entry${i}`).join(', ')}];`,
  '',
].join('\n');
const tsconfig = (moduleResolution: 'node16' | 'bundler', files: string[], skipLibCheck: boolean): string =>
  JSON.stringify(
    {
      compilerOptions: {
        module: moduleResolution === 'node16' ? 'node16' : 'esnext',
        moduleResolution,
        target: 'es2022',
        lib: ['es2023', 'dom'],
        types: ['node'],
        strict: true,
        noEmit: true,
        skipLibCheck,
      },
      files,
    },
    null,
    2,
  );

function checkProbe(dir: string, list: Entry[], layout: string): void {
  writeFileSync(join(dir, 'probe.mjs'), probe(list));
  const seen = JSON.parse(run(process.execPath, ['probe.mjs'], dir)) as Record<string, { esm: string[]; cjs: string[] }>;
  for (const entry of list) {
    const { esm, cjs } = seen[entry.specifier]!;
    const expected = [...entry.values].sort();
    if (JSON.stringify(esm) !== JSON.stringify(expected))
      failures.push(`${layout}: ESM ${entry.specifier} exports [${esm}], its source [${expected}]`);
    if (JSON.stringify(cjs) !== JSON.stringify(expected))
      failures.push(`${layout}: CommonJS ${entry.specifier} exports [${cjs}], its source [${expected}]`);
  }
}

/** Type-checks the consumer; `full` also checks every declaration file it reads (ours and the peers'), once is enough. */
function typecheck(dir: string, layout: string, full: boolean): void {
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  for (const [name, config] of [
    ['node16', tsconfig('node16', ['consumer.ts', 'consumer-cjs.cts'], !full)],
    ['bundler', tsconfig('bundler', ['consumer.ts'], true)],
  ] as const) {
    writeFileSync(join(dir, `tsconfig.${name}.json`), config);
    const result = spawnSync(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], { cwd: dir, encoding: 'utf8' });
    if (result.status !== 0) failures.push(`${layout}: the consumer does not type-check under moduleResolution ${name}:\n${result.stdout}`);
  }
}

interface Project {
  layout: string;
  install: (dir: string) => void;
  /** A strict layout: only the project's own dependencies are importable from it. */
  strict: boolean;
}

const npmInstall = (extra: string[]) => (dir: string) => void run('npm', ['install', '--no-audit', '--no-fund', ...extra], dir);
const pnpmInstall = (dir: string): void =>
  void run('npm', ['exec', '--yes', `--package=${PNPM}`, '--', 'pnpm', 'install', '--reporter=silent'], dir);
const all = packages.map((p) => p.name);
// The packages' own runtime dependencies: a strict layout must not let the consumer import them.
const transitive = [...new Set(packages.flatMap((p) => Object.keys(p.dependencies ?? {})).filter((d) => !d.startsWith('@ballast/')))];
const projects: Project[] = [
  { layout: 'npm', install: npmInstall([]), strict: false },
  { layout: 'linked', install: npmInstall(['--install-strategy=linked']), strict: true },
  { layout: 'pnpm', install: pnpmInstall, strict: true },
].filter((p) => only === undefined || only.includes(p.layout));

for (const project of projects) {
  const dir = join(work, project.layout);
  mkdirSync(dir);
  const file = (name: string): string => `file:${tarball.get(name)}`;
  const manifest = {
    name: `ballast-consumer-${project.layout}`,
    private: true,
    type: 'module',
    dependencies: { ...Object.fromEntries(all.map((name) => [name, file(name)])), ...peers, '@types/node': '^22' },
    // The packages' dependencies on each other resolve to the tarballs, not the registry.
    overrides: Object.fromEntries(all.map((name) => [name, `$${name}`])),
    pnpm: { overrides: Object.fromEntries(all.map((name) => [name, file(name)])) },
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  step(`${project.layout}: installing the ${all.length} tarballs`);
  try {
    project.install(dir);
  } catch (error) {
    failures.push(`${project.layout}: install failed: ${(error as Error).message}`);
    continue;
  }
  checkProbe(dir, entries, project.layout);
  writeFileSync(join(dir, 'consumer.ts'), consumer);
  writeFileSync(join(dir, 'consumer-cjs.cts'), consumerCts);
  typecheck(dir, project.layout, project.layout === 'npm');
  if (project.strict) {
    // Strict: a package's own dependencies (opossum, p-retry, …) are not importable from the
    // project, so whatever the READMEs import resolved through the packages that export it.
    for (const name of transitive) {
      const probe = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(name)})`], { cwd: dir });
      if (probe.status === 0) failures.push(`${project.layout}: ${name} is importable without depending on it: the layout is not strict`);
    }
  }
  step(
    `${project.layout}: ${entries.length} entries loaded as ESM and CommonJS, consumer type-checked` +
      (project.strict ? `, ${transitive.length} transitive dependencies hidden` : ''),
  );
}

if (args.includes('--keep')) console.log(`kept ${work}`);
else rmSync(work, { recursive: true, force: true });
if (failures.length > 0) {
  for (const f of failures) console.error(`✗ ${f}`);
  process.exit(1);
}
step(`consumer test passed: ${projects.map((p) => p.layout).join(', ')}`);
