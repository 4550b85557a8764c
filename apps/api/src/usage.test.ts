import { InProcessQueue } from '@ballast/app-queue';
import { toRecord, UsageStore } from '@ballast/app-usage';
import { type PostgresServer, startPostgres } from '@ballast/test/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticateWith, createApi } from './index.ts';

// biome-ignore lint/suspicious/noExplicitAny: JSON answers read field by field
type Json = any;

let pg: PostgresServer;
let store: UsageStore;
const queue = new InProcessQueue();
const now = Date.UTC(2026, 9, 20, 12);

beforeAll(async () => {
  pg = await startPostgres();
  store = await UsageStore.open({ database: await pg.createDatabase('api_usage') });
  const base = (n: number, tenant: string, finishedAt: number, outcome: 'done' | 'failed' = 'done') =>
    toRecord({
      jobId: `job-${n}`,
      tenant,
      worker: 'w-0',
      attempt: 1,
      outcome,
      cpuMs: 250,
      wallMs: 260,
      bytesIn: 2_000_000,
      bytesOut: 100_000,
      format: 'webp',
      enqueuedAt: finishedAt - 300,
      startedAt: finishedAt - 260,
      finishedAt,
    });
  await store.insert([
    base(1, 'acme', Date.UTC(2026, 9, 3)),
    base(2, 'acme', Date.UTC(2026, 9, 19)),
    base(3, 'acme', Date.UTC(2026, 9, 19), 'failed'),
    base(4, 'globex', Date.UTC(2026, 9, 19)),
    base(5, 'acme', Date.UTC(2026, 8, 30)), // last month
  ]);
});
afterAll(async () => {
  await store?.close();
  await pg?.stop();
  await queue.close();
});

/** An API whose auth hook takes the tenant from a test header, as identity's would from the key. */
function api() {
  return createApi({
    queue,
    authenticate: authenticateWith((request) => {
      const tenant = request.headers.get('x-test-tenant');
      return tenant ? { tenant } : { reject: { status: 401, message: 'no API key' } };
    }),
    usage: { store, now: () => now },
  });
}

describe('GET /v1/usage', () => {
  it("shows the caller's own usage of the current month so far, priced", async () => {
    const res = await api().app.request('/v1/usage', { headers: { 'x-test-tenant': 'acme' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      tenant: 'acme',
      period: '2026-10',
      from: '2026-10-01T00:00:00.000Z',
      to: '2026-10-20T12:00:00.000Z',
      conversions: 2,
      failed: 1,
      cpuSeconds: '0.750000',
      gbIn: '0.004000000',
      gbOut: '0.000200000',
      currency: 'USD',
      // 0.75 CPU-s × 0.00004 + 0.004 GB × 0.02 + 0.0002 GB × 0.09 + 2 × 0.0001 = 0.000328 → 0.00
      estimatedAmount: '0.00',
      billedRecords: 0,
    });
  });

  it('takes a day or a past month', async () => {
    const day: Json = await (await api().app.request('/v1/usage?period=2026-10-19', { headers: { 'x-test-tenant': 'acme' } })).json();
    expect([day.conversions, day.failed]).toEqual([1, 1]);
    const september: Json = await (await api().app.request('/v1/usage?period=2026-09', { headers: { 'x-test-tenant': 'acme' } })).json();
    expect([september.conversions, september.to]).toEqual([1, '2026-10-01T00:00:00.000Z']);
  });

  it("never shows another tenant's usage, and refuses what it does not understand", async () => {
    const app = api().app;
    const globex: Json = await (await app.request('/v1/usage', { headers: { 'x-test-tenant': 'globex' } })).json();
    expect([globex.tenant, globex.conversions]).toEqual(['globex', 1]);
    const forged = await app.request('/v1/usage?tenant=acme', { headers: { 'x-test-tenant': 'globex' } });
    expect(forged.status).toBe(400);
    expect(((await forged.json()) as Json).error.message).toMatch(/unknown parameter "tenant"/);
    expect((await app.request('/v1/usage')).status).toBe(401);
    const bad = await app.request('/v1/usage?period=2026-13', { headers: { 'x-test-tenant': 'acme' } });
    expect([bad.status, ((await bad.json()) as Json).error.code]).toEqual([400, 'ERR_BALLAST_INVALID_OPTION']);
    expect((await app.request('/v1/usage?period=2026-10&period=2026-09', { headers: { 'x-test-tenant': 'acme' } })).status).toBe(400);
    const nobody: Json = await (await app.request('/v1/usage', { headers: { 'x-test-tenant': 'initech' } })).json();
    expect([nobody.conversions, nobody.estimatedAmount]).toEqual([0, '0.00']);
  });
});
