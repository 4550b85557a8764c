/**
 * The repository's npm workspaces, read from the root `package.json` (`dir/*` globs
 * and plain paths), for the scripts that check every workspace or every package.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A workspace's manifest, as far as the scripts read it. */
export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  scripts: Record<string, string>;
  exports?: Record<string, unknown>;
  files?: string[];
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  publishConfig?: Record<string, unknown>;
}

/** A workspace: its directory (absolute and relative to the root) and its manifest. */
export interface Workspace extends Manifest {
  dir: string;
  path: string;
}

const read = (dir: string): Manifest => {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;
  return { ...manifest, scripts: manifest.scripts ?? {} };
};

/** Every workspace under `root`, in the order the root manifest lists them. */
export function workspaces(root: string): Workspace[] {
  const patterns = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
  const paths = patterns.flatMap((pattern) =>
    pattern.endsWith('/*')
      ? readdirSync(join(root, pattern.slice(0, -2)), { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => `${pattern.slice(0, -2)}/${e.name}`)
          .sort()
      : [pattern],
  );
  return paths
    .filter((path) => existsSync(join(root, path, 'package.json')))
    .map((path) => ({ ...read(join(root, path)), dir: join(root, path), path }));
}

/** The published packages: workspaces under `packages/` that are not private. */
export function publishedPackages(root: string): Workspace[] {
  return workspaces(root).filter((w) => w.path.startsWith('packages/') && w.private !== true);
}

/** The repository root (this file lives in `scripts/lib`). */
export const repoRoot: string = join(import.meta.dirname, '..', '..');
