import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedIdentity } from './embedded.ts';

const dir = mkdtempSync(join(tmpdir(), 'ballast-identity-embedded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('startEmbeddedIdentity (npm start)', () => {
  it('creates a demo tenant and key on first run, keeps them across restarts, and replaces a revoked demo key', {
    timeout: 300_000,
  }, async () => {
    const first = await startEmbeddedIdentity({ dataDir: dir });
    const demo = first.demo;
    expect(demo?.key).toMatch(/^blst_/);
    const edge = await first.client();
    expect(edge.verify(`Bearer ${demo?.key}`)).toMatchObject({ ok: true, tenant: { name: 'demo', plan: 'enterprise' } });
    const token = first.adminToken;
    expect(statSync(join(dir, 'demo.json')).mode & 0o777).toBe(0o600);
    await first.close();

    const second = await startEmbeddedIdentity({ dataDir: dir });
    expect(second.demo).toEqual(demo);
    expect(second.adminToken).toBe(token);
    expect((await second.store.listTenants()).filter((t) => t.name === 'demo')).toHaveLength(1);
    await second.store.revokeKey(demo?.keyId as string);
    await second.close();

    const third = await startEmbeddedIdentity({ dataDir: dir });
    expect(third.demo?.key).not.toBe(demo?.key);
    expect(third.demo?.tenantId).toBe(demo?.tenantId);
    const cache = await third.client();
    expect(cache.verify(`Bearer ${demo?.key}`)).toMatchObject({ ok: false, status: 403 });
    expect(cache.verify(`Bearer ${third.demo?.key}`)).toMatchObject({ ok: true });
    await third.close();
  });
});
