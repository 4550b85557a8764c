/**
 * Every symbol a README tells users to import is exported by the package (entry) it names,
 * so the README works under strict installs (pnpm, npm's `--install-strategy=linked`, Yarn
 * PnP) where a transitive dependency such as `@ballast/common` cannot be imported.
 *
 * Checked, in every package README and the root README:
 * - each name in an `import { … } from '@ballast/<pkg>[/<subpath>]'` (or `export … from`,
 *   or `const { … } = require(…)`) in a code block is exported by that entry;
 * - each error class or guard a package README names in backticks (`XxxError`,
 *   `isXxxError`, as in its Errors table) is exported by that package's main entry.
 *
 * Exports come from the TypeScript compiler (types and values), reading each entry's source.
 *
 * Usage: node scripts/check-readme-exports.ts
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { publishedPackages, repoRoot } from './lib/workspaces.ts';

/** Names of JavaScript's and Node's own errors, and of peers' errors a README may mention. */
const FOREIGN = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'AggregateError', 'DOMException', 'AbortError']);

const packages = publishedPackages(repoRoot);
const entries = new Map<string, string>(); // '@ballast/x' or '@ballast/x/sub' → source file
for (const pkg of packages) {
  for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
    const source = typeof target === 'object' && target !== null ? (target as Record<string, unknown>)['@ballast/source'] : undefined;
    if (typeof source === 'string') entries.set(subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`, join(pkg.dir, source));
  }
}

const program = ts.createProgram([...entries.values()], {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2023,
  allowImportingTsExtensions: true,
  customConditions: ['@ballast/source'],
  noEmit: true,
  skipLibCheck: true,
});
const checker = program.getTypeChecker();
const exportsOf = new Map<string, Set<string>>();
for (const [specifier, file] of entries) {
  const source = program.getSourceFile(file);
  const symbol = source && checker.getSymbolAtLocation(source);
  if (symbol === undefined) throw new Error(`cannot read the exports of ${specifier} (${file})`);
  exportsOf.set(specifier, new Set(checker.getExportsOfModule(symbol).map((s) => s.name)));
}

const problems: string[] = [];
let checked = 0;
const readmes = [
  { file: 'README.md', pkg: undefined as string | undefined },
  ...packages.map((p) => ({ file: `${p.path}/README.md`, pkg: p.name })),
];
for (const { file, pkg } of readmes) {
  const text = readFileSync(join(repoRoot, file), 'utf8');
  const code = [...text.matchAll(/```(?:ts|typescript|js|javascript|mjs|cjs)\n([\s\S]*?)```/g)].map((m) => m[1]!).join('\n');
  const statements = [
    ...code.matchAll(/\b(?:import|export)\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['"](@ballast\/[^'"]+)['"]/g),
    ...code.matchAll(/\bconst\s*\{([^}]*)\}\s*=\s*(?:await\s+import|require)\(\s*['"](@ballast\/[^'"]+)['"]\s*\)/g),
  ];
  for (const [, names, specifier] of statements as unknown as Array<[string, string, string]>) {
    const exported = exportsOf.get(specifier);
    for (const raw of names.split(',')) {
      const name = raw
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+|\s*:\s*/)[0]!
        .trim();
      if (name === '') continue;
      checked++;
      if (exported === undefined) problems.push(`${file}: imports ${name} from ${specifier}, which is not a public entry`);
      else if (!exported.has(name)) problems.push(`${file}: imports ${name} from ${specifier}, which does not export it`);
    }
  }
  if (pkg === undefined) continue;
  const main = exportsOf.get(pkg)!;
  const named = new Set([...text.matchAll(/(?<!named )`((?:is)?[A-Z]?[A-Za-z0-9]*Error)`/g)].map((m) => m[1]!));
  for (const name of named) {
    if (FOREIGN.has(name) || !/^(is[A-Z]|[A-Z])/.test(name)) continue;
    checked++;
    if (!main.has(name)) problems.push(`${file}: names \`${name}\`, which ${pkg} does not export`);
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(`✗ ${p}`);
  console.error(`\n${problems.length} README symbol(s) not exported where the README says.`);
  process.exit(1);
}
console.log(`README exports: ${checked} imported or named symbols, all exported by the package the README names.`);
