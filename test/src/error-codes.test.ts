/**
 * Every error code a package throws or answers with is a member of a code union it (or a
 * Ballast package it depends on) exports, so `switch (error.code)` narrows over all of them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packagesDir = fileURLToPath(new URL('../../packages/', import.meta.url));

/** The package's own source files: tests and test helpers left out. */
function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.startsWith('testing'))
    .map((f) => readFileSync(join(dir, f), 'utf8'));
}

/** Code without comments, so a code named in a TSDoc example does not count as used. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** Members of every exported `…Code` union type. */
function declared(texts: string[]): Set<string> {
  const codes = new Set<string>();
  for (const text of texts) {
    for (const [, union] of code(text).matchAll(/export type \w*Code\b[^=]*=([^;]+);/g)) {
      for (const [member] of (union as string).matchAll(/ERR_BALLAST_[A-Z_]+/g)) codes.add(member);
    }
  }
  return codes;
}

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const packages = new Map(
  readdirSync(packagesDir).map((dir) => {
    const manifest = JSON.parse(readFileSync(join(packagesDir, dir, 'package.json'), 'utf8')) as Manifest;
    return [manifest.name, { dir, manifest, texts: sources(join(packagesDir, dir, 'src')) }] as const;
  }),
);

describe.each([...packages.keys()])('%s', (name) => {
  it('declares every error code it uses in an exported code union (its own or a dependency’s)', () => {
    const { manifest, texts } = packages.get(name) as NonNullable<ReturnType<typeof packages.get>>;
    const deps = Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies }).filter((d) => packages.has(d));
    const known = declared([...texts, ...deps.flatMap((d) => packages.get(d)?.texts ?? [])]);
    // Codes thrown or answered; a comparison (`error.code === 'ERR_BALLAST_…'`) only recognises another package's.
    const uses = /(?<!(?:[=!]==|case)\s*)'(ERR_BALLAST_[A-Z_]*[A-Z])'/g;
    const used = new Set(texts.flatMap((text) => [...code(text).matchAll(uses)].map((m) => m[1] as string)));
    expect([...used].filter((c) => !known.has(c)).sort()).toEqual([]);
    expect(used.size + known.size).toBeGreaterThan(0);
  });
});
