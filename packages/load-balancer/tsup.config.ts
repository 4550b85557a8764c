import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/hono.ts', 'src/prometheus.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node22',
  external: ['hono', 'prom-client'],
});
