/**
 * The public entries of the published packages (`@ballast/x` and `@ballast/x/sub`, from
 * each `exports` map) and what each exports, read from its source by the TypeScript compiler.
 */
import { join } from 'node:path';
import ts from 'typescript';
import { publishedPackages, repoRoot } from './workspaces.ts';

/** One public entry: its specifier, package and source file, and its exported names. */
export interface Entry {
  specifier: string;
  packageName: string;
  source: string;
  /** Every exported name, types included. */
  names: Set<string>;
  /** Exported names that exist at run time (not type-only). */
  values: Set<string>;
}

/** Every public entry of every published package, in package order. */
export function publicEntries(): Entry[] {
  const found: Array<Omit<Entry, 'names' | 'values'>> = [];
  for (const pkg of publishedPackages(repoRoot)) {
    for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
      const source = typeof target === 'object' && target !== null ? (target as Record<string, unknown>)['@ballast/source'] : undefined;
      if (typeof source !== 'string') continue;
      found.push({
        specifier: subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`,
        packageName: pkg.name,
        source: join(pkg.dir, source),
      });
    }
  }
  const program = ts.createProgram(
    found.map((e) => e.source),
    {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2023,
      allowImportingTsExtensions: true,
      customConditions: ['@ballast/source'],
      noEmit: true,
      skipLibCheck: true,
    },
  );
  const checker = program.getTypeChecker();
  return found.map((entry) => {
    const file = program.getSourceFile(entry.source);
    const symbol = file && checker.getSymbolAtLocation(file);
    if (symbol === undefined) throw new Error(`cannot read the exports of ${entry.specifier} (${entry.source})`);
    const exported = checker.getExportsOfModule(symbol);
    const isValue = (s: ts.Symbol): boolean => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      return (target.flags & ts.SymbolFlags.Value) !== 0 && !isTypeOnly(s);
    };
    return { ...entry, names: new Set(exported.map((s) => s.name)), values: new Set(exported.filter(isValue).map((s) => s.name)) };
  });
}

/** True for `export type { X }` / `export { type X }` re-exports (type-only even when X is a value). */
function isTypeOnly(symbol: ts.Symbol): boolean {
  return (symbol.declarations ?? []).some(
    (d) => (ts.isExportSpecifier(d) && (d.isTypeOnly || d.parent.parent.isTypeOnly)) || (ts.isImportSpecifier(d) && d.isTypeOnly),
  );
}
