/**
 * The default export of an ESM-only dependency (p-retry, is-network-error). In the ESM
 * build it is the import itself; the CommonJS build loads the dependency through
 * `require(esm)` and the bundler wraps its namespace once more, so the function sits
 * one `.default` deeper.
 */
export function esmDefault<T>(imported: T): T {
  return typeof imported === 'function' ? imported : ((imported as { default?: T } | null)?.default as T);
}
