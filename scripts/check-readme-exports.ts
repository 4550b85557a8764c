/**
 * Every symbol a README tells users to import is exported by the package (entry) it names,
 * so the README works under strict installs (pnpm, npm's `--install-strategy=linked`, Yarn
 * PnP) where a transitive dependency such as `@ballast/common` cannot be imported.
 *
 * Checked, in every package README and the root README:
 * - each name in an `import { … } from '@ballast/<pkg>[/<subpath>]'` (or `export … from`,
 *   or `const { … } = require(…)`) in a code block is exported by that entry, and a package
 *   README other than common's imports from `@ballast/common` only if its `npm install` lines name it;
 * - each error class or guard a package README names in backticks (`XxxError`,
 *   `isXxxError`, as in its Errors table) is exported by that package's main entry.
 *
 * Exports come from the TypeScript compiler (types and values), reading each entry's source.
 *
 * Usage: node scripts/check-readme-exports.ts
 */
import { publicEntries } from './lib/exports.ts';
import { readmeImports, readmes } from './lib/readme-imports.ts';

/** Names of JavaScript's and Node's own errors, and of peers' errors a README may mention. */
const FOREIGN = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'AggregateError', 'DOMException', 'AbortError']);

const exportsOf = new Map(publicEntries().map((e) => [e.specifier, e.names]));

const problems: string[] = [];
let checked = 0;
// @ballast/common comes with every package but is not theirs to import: a package README
// imports from it only if it tells users to install it (`npm i …`).
const installed = new Map(
  readmes().map(({ file, text }) => [
    file,
    new Set([...text.matchAll(/npm (?:i|install)\s+([^\n#]+)/g)].flatMap((m) => m[1]!.trim().split(/\s+/))),
  ]),
);
for (const { file, packageName, name, specifier } of readmeImports()) {
  checked++;
  const exported = exportsOf.get(specifier);
  const pkg = specifier.split('/').slice(0, 2).join('/');
  if (exported === undefined) problems.push(`${file}: imports ${name} from ${specifier}, which is not a public entry`);
  else if (!exported.has(name)) problems.push(`${file}: imports ${name} from ${specifier}, which does not export it`);
  else if (pkg === '@ballast/common' && packageName !== undefined && pkg !== packageName && !installed.get(file)?.has(pkg)) {
    problems.push(`${file}: imports ${name} from ${pkg}, which it does not tell users to install (strict installs cannot import it)`);
  }
}
for (const { file, packageName, text } of readmes()) {
  if (packageName === undefined) continue;
  const main = exportsOf.get(packageName)!;
  const named = new Set([...text.matchAll(/(?<!named )`((?:is)?[A-Z]?[A-Za-z0-9]*Error)`/g)].map((m) => m[1]!));
  for (const name of named) {
    if (FOREIGN.has(name) || !/^(is[A-Z]|[A-Z])/.test(name)) continue;
    checked++;
    if (!main.has(name)) problems.push(`${file}: names \`${name}\`, which ${packageName} does not export`);
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(`✗ ${p}`);
  console.error(`\n${problems.length} README symbol(s) not exported where the README says.`);
  process.exit(1);
}
console.log(`README exports: ${checked} imported or named symbols, all exported by the package the README names.`);
