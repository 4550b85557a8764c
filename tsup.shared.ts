import { readFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

/**
 * One build configuration for every package: ESM + CJS + `.d.ts` for each subpath
 * export, read from the package's own `exports` map (its `@ballast/source` entries),
 * so adding a subpath export is a one-line change in package.json.
 * Dependencies and peer dependencies stay external.
 */
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, unknown> };
const entry = Object.values(pkg.exports)
  .map((target) => (typeof target === 'object' && target !== null ? (target as Record<string, unknown>)['@ballast/source'] : undefined))
  .filter((source): source is string => typeof source === 'string');

export default defineConfig({
  entry,
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node22',
});
