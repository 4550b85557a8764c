/**
 * Runs one example by name: `npm run example -- <name>` from the repository root.
 * The examples import the packages by their public names; run from the repository, those
 * resolve to the TypeScript sources (the `@ballast/source` condition), so nothing needs
 * building first.
 */
import { readdirSync } from 'node:fs';

const names = readdirSync(import.meta.dirname)
  .filter((file) => file.endsWith('.ts') && file !== 'run.ts' && !file.endsWith('.config.ts'))
  .map((file) => file.slice(0, -3))
  .sort();
const name = process.argv[2];
if (name === undefined || !names.includes(name)) {
  console.error(
    `Usage: npm run example -- <name>, one of: ${names.join(', ')}${name === undefined ? '' : ` (got ${JSON.stringify(name)})`}`,
  );
  process.exit(2);
}
await import(`./${name}.ts`);
