import { defineConfig } from 'vitest/config';

/**
 * One test configuration for every workspace. The `@ballast/source` export condition
 * makes imports of `@ballast/*` resolve to their TypeScript sources, so tests never
 * depend on a stale build.
 */
export default defineConfig({
  resolve: { conditions: ['@ballast/source', 'module', 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: ['@ballast/source', 'module', 'node', 'import', 'default'], externalConditions: ['@ballast/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    restoreMocks: true,
    unstubEnvs: true,
  },
});
