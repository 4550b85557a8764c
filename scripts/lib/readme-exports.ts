/**
 * Every symbol a README tells users to import is exported by the package (entry) it names,
 * so the README works under strict installs (pnpm, npm's `--install-strategy=linked`, Yarn
 * PnP) where a transitive dependency such as `@ballast/common` cannot be imported.
 *
 * Checked, in every package README and the root README:
 * - each name in an `import { … } from '@ballast/<pkg>[/<subpath>]'` (or `export … from`,
 *   or `const { … } = require(…)`) in a code block is exported by that entry, and a package
 *   README other than common's imports from `@ballast/common` only if its `npm install`
 *   lines name it;
 * - each error class or guard a package README names in backticks (`XxxError`,
 *   `isXxxError`, as in its Errors table) is exported by that package's main entry.
 *
 * Exports come from the TypeScript compiler (types and values), reading each entry's source.
 * The test benchmarks/composed/test/readme-imports.test.ts runs these checks.
 */
import { publicEntries } from './exports.ts';
import { readmeImports, readmes } from './readme-imports.ts';

/** Names of JavaScript's and Node's own errors, and of peers' errors a README may mention. */
const FOREIGN = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'AggregateError', 'DOMException', 'AbortError']);

/** One symbol a README uses, and what is wrong with it (undefined when nothing is). */
export interface ReadmeSymbol {
  file: string;
  name: string;
  /** The entry the README says it comes from. */
  specifier: string;
  problem: string | undefined;
}

/** Every symbol the READMEs import or name, checked. */
export function readmeSymbols(): ReadmeSymbol[] {
  const exportsOf = new Map(publicEntries().map((e) => [e.specifier, e.names]));
  const out: ReadmeSymbol[] = [];
  // @ballast/common comes with every package but is not theirs to import: a package README
  // imports from it only if it tells users to install it (`npm i …`).
  const installed = new Map(
    readmes().map(({ file, text }) => [
      file,
      new Set([...text.matchAll(/npm (?:i|install)\s+([^\n#]+)/g)].flatMap((m) => m[1]!.trim().split(/\s+/))),
    ]),
  );
  for (const { file, packageName, name, specifier } of readmeImports()) {
    const exported = exportsOf.get(specifier);
    const pkg = specifier.split('/').slice(0, 2).join('/');
    let problem: string | undefined;
    if (exported === undefined) problem = `${specifier} is not a public entry`;
    else if (!exported.has(name)) problem = `${specifier} does not export ${name}`;
    else if (pkg === '@ballast/common' && packageName !== undefined && pkg !== packageName && !installed.get(file)?.has(pkg)) {
      problem = `imported from ${pkg}, which the README does not tell users to install (strict installs cannot import it)`;
    }
    out.push({ file, name, specifier, problem });
  }
  for (const { file, packageName, text } of readmes()) {
    if (packageName === undefined) continue;
    const main = exportsOf.get(packageName)!;
    const named = new Set([...text.matchAll(/(?<!named )`((?:is)?[A-Z]?[A-Za-z0-9]*Error)`/g)].map((m) => m[1]!));
    for (const name of named) {
      if (FOREIGN.has(name) || !/^(is[A-Z]|[A-Z])/.test(name)) continue;
      out.push({
        file,
        name,
        specifier: packageName,
        problem: main.has(name) ? undefined : `named in the README, not exported by ${packageName}`,
      });
    }
  }
  return out;
}
