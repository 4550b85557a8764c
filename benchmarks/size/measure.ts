/**
 * What each published package adds to a user's bundle: every public entry (`exports`
 * subpath) bundled by esbuild, minified, then gzipped (level 9). Two figures per entry:
 * with its dependencies bundled (what a user's bundle grows by; peer dependencies and
 * Node built-ins stay external) and its own code alone (every dependency external).
 * Sources are bundled through the `@ballast/source` condition, as tsup builds them.
 */
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, version as esbuildVersion } from 'esbuild';
import { publishedPackages, repoRoot } from '../../scripts/lib/workspaces.ts';

/** One entry's sizes, bytes. */
export interface EntrySize {
  /** The exports subpath: `.`, `./hono`, ... */
  entry: string;
  /** Minified, with dependencies bundled. */
  minified: number;
  /** Minified and gzipped, with dependencies bundled: what the budget limits. */
  gzip: number;
  /** Minified and gzipped, own code only (every dependency external). */
  ownGzip: number;
}

/** One package's entries. */
export interface PackageSize {
  name: string;
  /** Directory name under packages/. */
  dir: string;
  entries: EntrySize[];
}

/** benchmarks/results/size.json */
export interface SizeResults {
  command: string;
  esbuild: string;
  date: string;
  packages: PackageSize[];
}

/** The command that writes benchmarks/results/size.json. */
export const COMMAND = 'npm run bench:size';

const builtins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

async function bundle(entryPoint: string, external: string[]): Promise<Uint8Array> {
  const result = await build({
    entryPoints: [entryPoint],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    conditions: ['@ballast/source'],
    external: [...builtins, ...external],
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
  });
  return result.outputFiles[0]!.contents;
}

/** Measures every entry of every published package. */
export async function measureSizes(): Promise<SizeResults> {
  const out: PackageSize[] = [];
  for (const pkg of publishedPackages(repoRoot)) {
    const peers = Object.keys(pkg.peerDependencies ?? {});
    const deps = Object.keys(pkg.dependencies ?? {});
    const entries: EntrySize[] = [];
    for (const [entry, target] of Object.entries(pkg.exports ?? {})) {
      const source = typeof target === 'object' && target !== null ? (target as Record<string, unknown>)['@ballast/source'] : undefined;
      if (typeof source !== 'string') continue;
      const file = join(pkg.dir, source);
      const withDeps = await bundle(
        file,
        peers.flatMap((p) => [p, `${p}/*`]),
      );
      const own = await bundle(
        file,
        [...peers, ...deps].flatMap((p) => [p, `${p}/*`]),
      );
      entries.push({
        entry,
        minified: withDeps.byteLength,
        gzip: gzipSync(withDeps, { level: 9 }).byteLength,
        ownGzip: gzipSync(own, { level: 9 }).byteLength,
      });
    }
    out.push({ name: pkg.name, dir: pkg.path.slice('packages/'.length), entries });
  }
  return { command: COMMAND, esbuild: esbuildVersion, date: new Date().toISOString(), packages: out };
}
