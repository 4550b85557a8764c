/**
 * Every symbol a README imports from a Ballast package, or names as an error class or
 * guard, is exported by the entry it names (read by the TypeScript compiler from the
 * sources installed users get built): a README that shows an import the package does not
 * export fails here, not in a user's project. The rules: scripts/lib/readme-exports.ts;
 * `npm run test:consumer` also type-checks these imports against the packed tarballs.
 */
import { describe, expect, it } from 'vitest';
import { readmeSymbols } from '../../../scripts/lib/readme-exports.ts';

const symbols = readmeSymbols();

describe('README imports', () => {
  it('finds imports to check', () => {
    expect(symbols.length).toBeGreaterThan(20);
  });

  it.each(symbols.map((s) => [`${s.file}: ${s.name} from ${s.specifier}`, s] as const))('%s is exported', (_, symbol) => {
    expect(symbol.problem).toBeUndefined();
  });
});
