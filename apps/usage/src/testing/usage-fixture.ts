/**
 * The setup every test of billing and of the invariant checker starts from: one real
 * PostgreSQL server for the test file, and for each test a usage store on a fresh database
 * and fresh directories for cold storage and billing output.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PostgresServer, startPostgres } from '@ballast/test/postgres';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { ColdStorage } from '../archive.ts';
import { UsageStore } from '../store.ts';

/** What each test gets; read the fields inside tests and hooks (they change before each test). */
export interface UsageFixture {
  /** A store on this test's own database. */
  readonly store: UsageStore;
  /** This test's temporary directory (removed after it). */
  readonly root: string;
  /** Cold storage in `<root>/cold`. */
  readonly cold: ColdStorage;
  /** `<root>/billing`, for billing output. */
  readonly billingDir: string;
}

/**
 * Registers the hooks (call it at the top of a test file, before hooks that use the
 * fixture): PostgreSQL starts before the file's tests and stops after them, databases are
 * named `<name>_<n>`, directories `ballast-<name>-…`.
 */
export function useUsageFixture(name: string): UsageFixture {
  let server: PostgresServer | undefined;
  let store: UsageStore | undefined;
  let database = 0;
  const fixture = { store: undefined as unknown as UsageStore, root: '', cold: undefined as unknown as ColdStorage, billingDir: '' };
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await store?.close();
    await server?.stop();
  });
  beforeEach(async () => {
    await store?.close();
    if (!server) throw new Error('PostgreSQL did not start');
    store = await UsageStore.open({ database: await server.createDatabase(`${name}_${++database}`) });
    const root = mkdtempSync(join(tmpdir(), `ballast-${name}-`));
    Object.assign(fixture, { store, root, cold: new ColdStorage(join(root, 'cold')), billingDir: join(root, 'billing') });
    return () => rmSync(root, { recursive: true, force: true });
  });
  return fixture;
}
