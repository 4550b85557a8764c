import { listen } from '@ballast/app-shared';
import { pgliteSql, postgresSql, type Sql } from '@ballast/app-shared/sql';
import { type PostgresServer, startPostgres } from '@ballast/test/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.ts';
import { InProcessFeed } from './feed.ts';
import { checkKey, hashKey } from './key.ts';
import { type AdminLogEntry, createManagementApi } from './management.ts';
import { migrate } from './migrations.ts';
import { ChangeRelay } from './relay.ts';
import { IdentityStore } from './store.ts';

const TOKEN = 'admin-token-for-tests-0123456789';
let pg: PostgresServer;
// A busy machine may take a minute or more to start PostgreSQL or PGlite.
beforeAll(async () => {
  pg = await startPostgres();
}, 180_000);
afterAll(() => pg?.stop());

const engines: Array<[string, () => Promise<Sql>]> = [
  ['PostgreSQL', async () => postgresSql({ url: await pg.createDatabase(`m${Math.random().toString(36).slice(2, 10)}`) })],
  ['PGlite', () => pgliteSql()],
];

describe.each(engines)('management plane on %s', (_engine, open) => {
  let sql: Sql;
  let feed: InProcessFeed;
  let relay: ChangeRelay;
  const logs: AdminLogEntry[] = [];
  let app: ReturnType<typeof createManagementApi>['app'];
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    app.request(path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
      ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });

  beforeAll(async () => {
    sql = await open();
    expect(await migrate(sql)).toEqual([1]);
    expect(await migrate(sql)).toEqual([]); // applied once
    const store = new IdentityStore(sql);
    feed = new InProcessFeed();
    relay = new ChangeRelay(store, feed);
    app = createManagementApi({ store, relay, adminToken: TOKEN, log: (e) => logs.push(e) }).app;
  }, 180_000);
  afterAll(async () => {
    await relay?.close();
    await sql?.close();
  });

  it('creates a tenant with its plan quota, issues a key shown once, lists only prefixes, revokes, changes the plan', async () => {
    const created = await call('POST', '/v1/tenants', { name: 'Acme', plan: 'pro', quota: { concurrentJobs: 20 } });
    expect(created.status).toBe(201);
    const tenant = (await created.json()) as { id: string; quota: Record<string, number>; plan: string };
    expect(tenant).toMatchObject({
      name: 'Acme',
      plan: 'pro',
      quota: { requestsPerSecond: 50, concurrentJobs: 20, monthlyCpuSeconds: 360_000 },
    });
    expect(tenant.id).toMatch(/^tn_/);

    const issued = await call('POST', `/v1/tenants/${tenant.id}/keys`, { name: 'ci' });
    expect(issued.status).toBe(201);
    expect(issued.headers.get('cache-control')).toBe('no-store');
    expect(issued.headers.get('x-identity-published')).toBe('true');
    const key = (await issued.json()) as { key: string; id: string; prefix: string; status: string };
    expect(checkKey(key.key).ok).toBe(true);
    expect(key.prefix).toBe(key.key.slice(0, 9));

    // The feed has the key's hash, never the key.
    const lookup = await feed.lookup(hashKey(key.key));
    expect(lookup.key).toMatchObject({ keyId: key.id, tenantId: tenant.id, status: 'active' });
    expect(lookup.tenant?.quota.concurrentJobs).toBe(20);

    const listed = await call('GET', `/v1/tenants/${tenant.id}/keys`);
    const text = await listed.text();
    expect(text).toContain(key.prefix);
    expect(text).not.toContain(key.key.slice(9));
    expect(text).not.toContain(hashKey(key.key));

    const revoked = await call('DELETE', `/v1/keys/${key.id}`);
    expect(revoked.status).toBe(200);
    expect(await revoked.json()).toMatchObject({ id: key.id, status: 'revoked' });
    expect((await feed.lookup(hashKey(key.key))).key?.status).toBe('revoked');
    const again = await call('DELETE', `/v1/keys/${key.id}`); // idempotent
    expect(again.status).toBe(200);

    const changed = await call('PATCH', `/v1/tenants/${tenant.id}`, { plan: 'enterprise' });
    expect(await changed.json()).toMatchObject({ plan: 'enterprise', quota: { requestsPerSecond: 500, concurrentJobs: 128 } });
    expect((await feed.lookup(hashKey(key.key))).tenant?.plan).toBe('enterprise');

    // Every change reached the feed, in version order.
    const since = await feed.changesSince(0);
    expect(since).not.toBe('resync');
    if (since !== 'resync') {
      const versions = since.changes.map((c) => c.version);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
      expect(since.changes.map((c) => c.kind)).toEqual(['tenant', 'key', 'key', 'tenant']);
    }

    // No log line carries a key.
    expect(JSON.stringify(logs)).not.toContain(key.key.slice(9));
  });

  it('lists and fetches tenants, and refuses a duplicate name (409)', async () => {
    const created = await call('POST', '/v1/tenants', { name: 'Listed' });
    const tenant = (await created.json()) as { id: string };
    const list = (await (await call('GET', '/v1/tenants')).json()) as { tenants: Array<{ id: string; plan: string }> };
    expect(list.tenants.find((t) => t.id === tenant.id)?.plan).toBe('free');
    expect((await call('GET', `/v1/tenants/${tenant.id}`)).status).toBe(200);
    const duplicate = await call('POST', '/v1/tenants', { name: 'listed' });
    expect(duplicate.status).toBe(409);
    expect(await duplicate.json()).toEqual({ error: { code: 'ERR_BALLAST_CONFLICT', message: 'a tenant named "listed" exists already' } });
  });

  it.each([
    ['no name', { plan: 'free' }, 'name must be a string'],
    ['an empty name', { name: ' ' }, 'name must be a string'],
    ['a control character', { name: 'a\nb' }, 'name must be a string'],
    ['a long name', { name: 'x'.repeat(101) }, 'name must be a string of 1 to 100'],
    ['an unknown plan', { name: 'p', plan: 'gold' }, 'plan must be one of free, pro, enterprise, got "gold"'],
    ['an unknown field', { name: 'p', owner: 'x' }, 'unknown field "owner"'],
    ['a negative quota', { name: 'p', quota: { concurrentJobs: -1 } }, 'quota.concurrentJobs must be an integer from 1'],
    ['a fractional job quota', { name: 'p', quota: { concurrentJobs: 1.5 } }, 'quota.concurrentJobs must be an integer'],
    ['an unknown quota field', { name: 'p', quota: { bandwidth: 1 } }, 'unknown quota field "bandwidth"'],
    ['a quota that is not an object', { name: 'p', quota: 5 }, 'quota must be an object, got 5'],
    ['an array', [1], 'the body must be a JSON object'],
    ['broken JSON', '{"name":', 'the body is not valid JSON'],
  ])('answers 400 naming the problem for %s', async (_what, body, message) => {
    const response = await call('POST', '/v1/tenants', body);
    expect(response.status).toBe(400);
    const json = (await response.json()) as { error: { code: string; message: string } };
    expect(json.error.code).toBe('ERR_BALLAST_INVALID_OPTION');
    expect(json.error.message).toContain(message);
  });

  it('answers 415 for a body that is not JSON, 413 for a large one, 404 for unknown ids and routes', async () => {
    expect((await call('POST', '/v1/tenants', 'name=x', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await call('POST', '/v1/tenants', { name: 'x'.repeat(20_000) })).status).toBe(413);
    const missing = await call('GET', '/v1/tenants/tn_nope');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: 'ERR_BALLAST_NOT_FOUND', message: 'no tenant with id "tn_nope"' } });
    expect((await call('POST', '/v1/tenants/tn_nope/keys')).status).toBe(404);
    expect((await call('DELETE', '/v1/keys/key_nope')).status).toBe(404);
    expect((await call('GET', '/v1/nothing')).status).toBe(404);
    expect((await call('PATCH', '/v1/tenants/tn_nope', {})).status).toBe(400);
  });

  it('never echoes a key pasted where an id belongs, in the answer or the log', async () => {
    const created = (await (await call('POST', '/v1/tenants', { name: 'Paste' })).json()) as { id: string };
    const { key } = (await (await call('POST', `/v1/tenants/${created.id}/keys`)).json()) as { key: string };
    const response = await call('DELETE', `/v1/keys/${key}`);
    expect(response.status).toBe(404);
    const text = await response.text();
    expect(text).not.toContain(key.slice(9));
    expect(text).toContain('an API key, not an id');
    expect(JSON.stringify(logs)).not.toContain(key.slice(9));
  });

  it('is driven by the CLI: create-tenant, issue-key, list-keys, change-plan, revoke-key', async () => {
    const server = await listen(app.fetch);
    const env = { BALLAST_IDENTITY_URL: server.url, BALLAST_IDENTITY_ADMIN_TOKEN: TOKEN };
    const cli = async (...argv: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(
        argv,
        env,
        (l) => out.push(l),
        (l) => err.push(l),
      );
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    try {
      const created = await cli('create-tenant', 'Cli Co', '--plan', 'pro', '--jobs', '3');
      expect(created.code).toBe(0);
      const tenant = JSON.parse(created.out) as { id: string; quota: { concurrentJobs: number } };
      expect(tenant.quota.concurrentJobs).toBe(3);
      const issued = JSON.parse((await cli('issue-key', tenant.id, '--name', 'laptop')).out) as { id: string; key: string };
      expect(checkKey(issued.key).ok).toBe(true);
      const listed = await cli('list-keys', tenant.id);
      expect(listed.out).toContain(issued.id);
      expect(listed.out).not.toContain(issued.key);
      expect(JSON.parse((await cli('change-plan', tenant.id, 'enterprise')).out)).toMatchObject({ plan: 'enterprise' });
      expect(JSON.parse((await cli('revoke-key', issued.id)).out)).toMatchObject({ status: 'revoked' });
      const wrong = await cli('change-plan', tenant.id, 'gold');
      expect(wrong.code).toBe(1);
      expect(wrong.err).toContain('plan must be one of free, pro, enterprise');
      expect((await cli('issue-key')).code).toBe(2);
      expect((await cli('frobnicate')).err).toContain('unknown command "frobnicate"');
      const nowhere = await runCli(
        ['list-tenants'],
        { INIT_CWD: '/nonexistent' },
        () => {},
        () => {},
      );
      expect(nowhere).toBe(2);
    } finally {
      await server.close();
    }
  });

  it('is admin only: no token or a wrong one answers 401 and changes nothing', async () => {
    const before = await feed.publishedVersion();
    for (const authorization of ['', 'Bearer wrong', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`]) {
      const response = await app.request('/v1/tenants', {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `intruder ${authorization}` }),
      });
      expect(response.status).toBe(401);
      const body = (await response.json()) as { error: { code: string } };
      expect(body.error.code).toMatch(/^ERR_BALLAST_AUTH_/);
    }
    expect(await feed.publishedVersion()).toBe(before);
    expect((await app.request('/healthz')).status).toBe(200);
    expect(() => createManagementApi({ store: new IdentityStore(sql), adminToken: 'short' })).toThrow(/at least 16 characters/);
  });
});
