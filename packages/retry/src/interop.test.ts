import pRetry from 'p-retry';
import { describe, expect, it } from 'vitest';
import { esmDefault } from './interop.ts';

describe('esmDefault', () => {
  it('returns an ESM default import as is', () => {
    expect(esmDefault(pRetry)).toBe(pRetry);
  });

  it('unwraps the namespace a CommonJS build receives from require(esm)', () => {
    expect(esmDefault({ default: pRetry, __esModule: true } as unknown as typeof pRetry)).toBe(pRetry);
  });
});
