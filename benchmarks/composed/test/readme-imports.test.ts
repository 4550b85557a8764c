/**
 * Every symbol a package README imports from a Ballast package is exported by it (its
 * sources, as installed users get them built): values are looked up on the module, types
 * in the export list of its entry file. A README that shows an import the package does not
 * export fails here, not in a user's project.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packages = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'packages');
const IMPORT = /import\s+(type\s+)?\{([^}]*)\}\s+from\s+'(@ballast\/[a-z-]+(?:\/[a-z-]+)?)'/g;

interface Imported {
  readme: string;
  specifier: string;
  name: string;
  typeOnly: boolean;
}

function readmeImports(): Imported[] {
  const found: Imported[] = [];
  for (const pkg of readdirSync(packages)) {
    let text: string;
    try {
      text = readFileSync(join(packages, pkg, 'README.md'), 'utf8');
    } catch {
      continue;
    }
    for (const block of text.matchAll(/```ts\n([\s\S]*?)```/g)) {
      for (const match of (block[1] as string).matchAll(IMPORT)) {
        for (const raw of (match[2] as string).split(',')) {
          const item = raw.trim();
          if (item === '') continue;
          const typeOnly = match[1] !== undefined || item.startsWith('type ');
          const name = item.replace(/^type\s+/, '').split(/\s+as\s+/)[0] as string;
          found.push({ readme: `packages/${pkg}/README.md`, specifier: match[3] as string, name, typeOnly });
        }
      }
    }
  }
  return found;
}

/** The entry file of a specifier, from the package's exports map (its `@ballast/source` entry). */
function entryFile(specifier: string): string {
  const [, pkgName, sub] = specifier.split('/') as [string, string, string | undefined];
  const manifest = JSON.parse(readFileSync(join(packages, pkgName, 'package.json'), 'utf8')) as {
    exports: Record<string, { '@ballast/source': string }>;
  };
  const entry = manifest.exports[sub === undefined ? '.' : `./${sub}`];
  if (entry === undefined) throw new Error(`${specifier} is not in the exports map of @ballast/${pkgName}`);
  return join(packages, pkgName, entry['@ballast/source']);
}

const imports = readmeImports();

describe('README imports', () => {
  it('finds imports to check', () => {
    expect(imports.length).toBeGreaterThan(20);
  });

  it.each(imports.map((i) => [`${i.readme}: ${i.name} from ${i.specifier}`, i] as const))('%s is exported', async (_, imported) => {
    const file = entryFile(imported.specifier);
    if (imported.typeOnly) {
      // A type is exported when the entry file names it in an export statement.
      const source = readFileSync(file, 'utf8');
      const exportsText = [...source.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)].map((m) => m[1]).join(',');
      const declared = new RegExp(
        `export\\s+(?:declare\\s+)?(?:type|interface|class|abstract class|function|const)\\s+${imported.name}\\b`,
      ).test(source);
      expect(declared || new RegExp(`\\b${imported.name}\\b`).test(exportsText)).toBe(true);
      return;
    }
    const module = (await import(imported.specifier)) as Record<string, unknown>;
    expect(module[imported.name], `${imported.name} is not exported by ${imported.specifier}`).toBeDefined();
  });
});
