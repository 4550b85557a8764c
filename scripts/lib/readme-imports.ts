/**
 * The imports READMEs show users: every `import { … } from '@ballast/…'` (or `export … from`,
 * or `const { … } = require(…)` / `await import(…)`) in a TypeScript or JavaScript code block.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { publishedPackages, repoRoot } from './workspaces.ts';

/** One imported name, where a README shows it. */
export interface ReadmeImport {
  /** The README, relative to the repository root. */
  file: string;
  /** The package whose README it is (undefined for the root README). */
  packageName: string | undefined;
  specifier: string;
  name: string;
}

/** The READMEs users read: the root one and each published package's. */
export function readmes(): Array<{ file: string; packageName: string | undefined; text: string }> {
  return [
    { file: 'README.md', packageName: undefined as string | undefined },
    ...publishedPackages(repoRoot).map((p) => ({ file: `${p.path}/README.md`, packageName: p.name as string | undefined })),
  ].map((r) => ({ ...r, text: readFileSync(join(repoRoot, r.file), 'utf8') }));
}

/** Every name every README imports from a `@ballast/*` entry. */
export function readmeImports(): ReadmeImport[] {
  const out: ReadmeImport[] = [];
  for (const { file, packageName, text } of readmes()) {
    const code = [...text.matchAll(/```(?:ts|typescript|js|javascript|mjs|cjs)\n([\s\S]*?)```/g)].map((m) => m[1]!).join('\n');
    const statements = [
      ...code.matchAll(/\b(?:import|export)\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['"](@ballast\/[^'"]+)['"]/g),
      ...code.matchAll(/\bconst\s*\{([^}]*)\}\s*=\s*(?:await\s+import|require)\(\s*['"](@ballast\/[^'"]+)['"]\s*\)/g),
    ];
    for (const [, names, specifier] of statements as unknown as Array<[string, string, string]>) {
      for (const raw of names.split(',')) {
        const name = raw
          .trim()
          .replace(/^type\s+/, '')
          .split(/\s+as\s+|\s*:\s*/)[0]!
          .trim();
        if (name !== '') out.push({ file, packageName, specifier, name });
      }
    }
  }
  return out;
}
