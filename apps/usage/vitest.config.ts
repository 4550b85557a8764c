import { defineConfig } from 'vitest/config';
import shared from '../../vitest.shared.ts';

// Vitest hands `ssr.resolve.conditions` to Node as `--conditions`; with `import` among them,
// node-postgres's `require('pg-pool')` gets the ES module build and fails. Node needs only ours.
export default defineConfig({
  ...shared,
  ssr: { ...shared.ssr, resolve: { ...shared.ssr?.resolve, conditions: ['@ballast/source', 'node', 'default'] } },
});
