import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AuthDecision, IdentityClient } from './edge-cache.ts';
import { type ChangeBatch, type ChangeSource, InProcessFeed, type Lookup } from './feed.ts';
import { generateKey } from './key.ts';
import type { KeyEntry, TenantEntry } from './model.ts';

let version = 0;
const tenant = (id = 'tn_a'): TenantEntry => ({
  kind: 'tenant',
  id,
  name: id,
  plan: 'pro',
  quota: { requestsPerSecond: 50, concurrentJobs: 4, monthlyCpuSeconds: 100 },
  version: ++version,
});
const keyEntry = (hash: string, status: 'active' | 'revoked' = 'active', tenantId = 'tn_a'): KeyEntry => ({
  kind: 'key',
  hash,
  keyId: `key_${hash.slice(0, 6)}`,
  tenantId,
  prefix: 'blst_xxxx',
  status,
  version: ++version,
});

/** A source over a feed whose lookups and change reads can be held, or made to fail, as a slow or dead Redis would. */
class ControlledSource implements ChangeSource {
  readonly kind = 'redis' as const;
  down = false;
  dropPublishes = false;
  held: Array<() => void> = [];
  hold = false;
  lookups = 0;
  readonly feed: InProcessFeed;
  constructor(feed: InProcessFeed) {
    this.feed = feed;
  }
  async snapshot() {
    if (this.down) throw new Error('source down');
    return this.feed.snapshot();
  }
  async lookup(hash: string): Promise<Lookup> {
    this.lookups++;
    if (this.down) throw new Error('source down');
    const read = await this.feed.lookup(hash); // read now...
    if (!this.hold) return read;
    return new Promise((resolve) => this.held.push(() => resolve(read))); // ...answer later
  }
  async changesSince(v: number) {
    if (this.down) throw new Error('source down');
    return this.feed.changesSince(v);
  }
  subscribe(listener: (batch: ChangeBatch) => void) {
    return this.feed.subscribe((batch) => {
      if (!this.down && !this.dropPublishes) listener(batch);
    });
  }
  async close() {}
}

const bearer = (key: string) => `Bearer ${key}`;
const decide = async (client: IdentityClient, header: string | undefined): Promise<AuthDecision> => client.verify(header);

describe('IdentityClient (edge cache)', () => {
  let feed: InProcessFeed;
  let source: ControlledSource;
  let client: IdentityClient;
  beforeEach(async () => {
    vi.useFakeTimers();
    feed = new InProcessFeed();
    source = new ControlledSource(feed);
    client = new IdentityClient({ source, pollIntervalMs: 1000, freshTtlMs: 5000, missTtlMs: 1000, maxStaleMs: 15 * 60_000 });
  });
  afterEach(async () => {
    await client.close();
    vi.useRealTimers();
  });

  it('answers a hit from memory, synchronously, with the tenant and its quota', async () => {
    const { key, hash } = generateKey();
    await feed.publish([tenant(), keyEntry(hash)]);
    expect(await client.start()).toBe(true);
    const decision = client.verify(bearer(key));
    expect(decision).not.toBeInstanceOf(Promise);
    expect(decision).toMatchObject({ ok: true, tenant: { id: 'tn_a', quota: { concurrentJobs: 4 } }, keyId: `key_${hash.slice(0, 6)}` });
    expect(client.stats()).toMatchObject({ hits: 1, lookups: 0 });
  });

  it.each([
    ['no header', undefined, 'ERR_BALLAST_AUTH_MISSING'],
    ['an empty header', '', 'ERR_BALLAST_AUTH_MISSING'],
    ['another scheme', `Basic ${generateKey().key}`, 'ERR_BALLAST_AUTH_MALFORMED'],
    ['no scheme', generateKey().key, 'ERR_BALLAST_AUTH_MALFORMED'],
    ['an empty key', 'Bearer ', 'ERR_BALLAST_AUTH_MALFORMED'],
    ['a wrong prefix', `Bearer sk_live_${'a'.repeat(36)}`, 'ERR_BALLAST_AUTH_MALFORMED'],
    ['a bad checksum', `Bearer blst_${'a'.repeat(36)}`, 'ERR_BALLAST_AUTH_MALFORMED'],
    ['a wrong length', `Bearer ${generateKey().key.slice(0, -1)}`, 'ERR_BALLAST_AUTH_MALFORMED'],
    ['non-ASCII', `Bearer blst_${'ü'.repeat(36)}`, 'ERR_BALLAST_AUTH_MALFORMED'],
    ['a huge header', `Bearer ${'blst_'.repeat(200_000)}`, 'ERR_BALLAST_AUTH_MALFORMED'],
    ['two keys joined (a duplicated header)', `Bearer ${generateKey().key}, Bearer ${generateKey().key}`, 'ERR_BALLAST_AUTH_MALFORMED'],
  ])('refuses %s with 401 and no lookup', async (_what, header, code) => {
    await client.start();
    const decision = await decide(client, header);
    expect(decision).toMatchObject({ ok: false, status: 401, code });
    const secret = header?.slice(12, 30) ?? '';
    if (!decision.ok && secret.length > 0) expect(decision.message).not.toContain(secret);
    expect(client.stats().lookups).toBe(0);
    expect(source.lookups).toBe(0);
  });

  it('looks an unknown key up once, caches the miss for missTtlMs, then asks again', async () => {
    await client.start();
    const { key } = generateKey();
    const answers = await Promise.all(Array.from({ length: 50 }, () => decide(client, bearer(key))));
    expect(answers.every((a) => !a.ok && a.code === 'ERR_BALLAST_AUTH_UNKNOWN_KEY')).toBe(true);
    expect(source.lookups).toBe(1); // 50 concurrent requests, one lookup
    await decide(client, bearer(key));
    expect(source.lookups).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    await decide(client, bearer(key));
    expect(source.lookups).toBe(2);
  });

  it('admits a new key as soon as its change arrives, even when the miss was cached', async () => {
    await client.start();
    const { key, hash } = generateKey();
    expect(await decide(client, bearer(key))).toMatchObject({ ok: false, code: 'ERR_BALLAST_AUTH_UNKNOWN_KEY' });
    await feed.publish([tenant(), keyEntry(hash)]);
    expect(await decide(client, bearer(key))).toMatchObject({ ok: true });
  });

  it('admits a new key within the miss TTL when its publish is lost (the poll or the next lookup finds it)', async () => {
    await client.start();
    const { key, hash } = generateKey();
    expect((await decide(client, bearer(key))).ok).toBe(false);
    source.dropPublishes = true;
    await feed.publish([tenant(), keyEntry(hash)]);
    expect((await decide(client, bearer(key))).ok).toBe(false); // still the cached miss
    await vi.advanceTimersByTimeAsync(1000);
    expect((await decide(client, bearer(key))).ok).toBe(true);
  });

  it('refuses a revoked key with 403 at once, and sees a revocation whose publish was lost within one poll', async () => {
    const a = generateKey();
    const b = generateKey();
    await feed.publish([tenant(), keyEntry(a.hash), keyEntry(b.hash)]);
    await client.start();
    await feed.publish([keyEntry(a.hash, 'revoked')]);
    expect(await decide(client, bearer(a.key))).toMatchObject({ ok: false, status: 403, code: 'ERR_BALLAST_AUTH_REVOKED' });

    source.dropPublishes = true;
    await feed.publish([keyEntry(b.hash, 'revoked')]);
    expect((await decide(client, bearer(b.key))).ok).toBe(true); // not seen yet
    await vi.advanceTimersByTimeAsync(1000);
    expect(await decide(client, bearer(b.key))).toMatchObject({ ok: false, status: 403 });
  });

  it('a lookup in flight while the key is revoked never re-admits it (the revocation race)', async () => {
    const { key, hash } = generateKey();
    await client.start();
    source.dropPublishes = true; // the creation event is lost: the cache must look the key up
    await feed.publish([tenant(), keyEntry(hash)]); // created after the snapshot: not cached yet
    source.hold = true;
    const pending = decide(client, bearer(key)); // the lookup reads "active" now...
    await vi.advanceTimersByTimeAsync(0);
    expect(source.held).toHaveLength(1);
    source.dropPublishes = false;
    await feed.publish([keyEntry(hash, 'revoked')]); // ...the revocation arrives...
    for (const release of source.held) release(); // ...then the lookup lands, with the old read
    expect(await pending).toMatchObject({ ok: false, status: 403 });
    expect(await decide(client, bearer(key))).toMatchObject({ ok: false, status: 403 });
    // A resync that reads an older snapshot cannot bring it back either.
    source.hold = false;
    await client.sync();
    expect(await decide(client, bearer(key))).toMatchObject({ ok: false, status: 403 });
  });

  it('a late lookup that read before the revocation landed and before its publish arrived is overruled by the publish', async () => {
    const { key, hash } = generateKey();
    await feed.publish([tenant()]);
    await client.start();
    source.dropPublishes = true;
    await feed.publish([keyEntry(hash)]);
    source.hold = true;
    const pending = decide(client, bearer(key));
    await vi.advanceTimersByTimeAsync(0);
    for (const release of source.held) release();
    expect((await pending).ok).toBe(true); // correct at the time: the key was active
    source.dropPublishes = false;
    await feed.publish([keyEntry(hash, 'revoked')]);
    expect(await decide(client, bearer(key))).toMatchObject({ ok: false, status: 403 });
  });

  it('applies a plan change to the tenant of cached keys', async () => {
    const { key, hash } = generateKey();
    await feed.publish([tenant(), keyEntry(hash)]);
    await client.start();
    await feed.publish([{ ...tenant(), plan: 'enterprise', quota: { requestsPerSecond: 500, concurrentJobs: 128, monthlyCpuSeconds: 1 } }]);
    expect(await decide(client, bearer(key))).toMatchObject({ ok: true, tenant: { plan: 'enterprise', quota: { concurrentJobs: 128 } } });
  });

  it('with the source down keeps admitting valid keys and refusing revoked ones for maxStaleMs, reporting stale', async () => {
    const good = generateKey();
    const gone = generateKey();
    await feed.publish([tenant(), keyEntry(good.hash), keyEntry(gone.hash, 'revoked')]);
    await client.start();
    expect(client.health()).toMatchObject({ loaded: true, fresh: true, stale: false });
    source.down = true;
    await vi.advanceTimersByTimeAsync(6000);
    expect(client.health()).toMatchObject({ loaded: true, fresh: false, stale: true });
    for (let minute = 0; minute < 15; minute++) {
      expect((await decide(client, bearer(good.key))).ok).toBe(true);
      expect(await decide(client, bearer(gone.key))).toMatchObject({ status: 403 });
      await vi.advanceTimersByTimeAsync(59_000);
    }
    // An unknown key cannot be verified: 503, not 401 (it may be a new key).
    expect(await decide(client, bearer(generateKey().key))).toMatchObject({ status: 503, code: 'ERR_BALLAST_IDENTITY_UNAVAILABLE' });
    await vi.advanceTimersByTimeAsync(60_000); // past maxStaleMs (15 min)
    expect(await decide(client, bearer(good.key))).toMatchObject({ status: 503 });
    expect(await decide(client, bearer(gone.key))).toMatchObject({ status: 403 }); // revoked stays refused
    source.down = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect((await decide(client, bearer(good.key))).ok).toBe(true);
    expect(client.health().fresh).toBe(true);
  });

  it('starts with the source down, answers 503 until the first snapshot, then serves', async () => {
    const { key, hash } = generateKey();
    await feed.publish([tenant(), keyEntry(hash)]);
    source.down = true;
    expect(await client.start()).toBe(false);
    expect(client.health()).toMatchObject({ loaded: false, stale: false });
    expect(await decide(client, bearer(key))).toMatchObject({ status: 503 });
    source.down = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect((await decide(client, bearer(key))).ok).toBe(true);
  });

  it('bounds the misses it remembers and the lookups in flight', async () => {
    const small = new IdentityClient({ source, maxMisses: 10, maxLookups: 2 });
    await small.start();
    for (let i = 0; i < 30; i++) await decide(small, bearer(generateKey().key));
    expect(small.stats().cachedMisses).toBe(10);
    source.hold = true;
    const pending = [1, 2, 3].map(() => decide(small, bearer(generateKey().key)));
    await vi.advanceTimersByTimeAsync(0);
    expect(await pending[2]).toMatchObject({ status: 503 });
    for (const release of source.held) release();
    await Promise.all(pending);
    await small.close();
  });

  it('validates its options, naming the option', () => {
    expect(() => new IdentityClient({ source, missTtlMs: 5000 })).toThrow(/missTtlMs must be a finite number/);
    expect(() => new IdentityClient({ source, pollIntervalMs: -1 })).toThrow(/pollIntervalMs/);
    expect(() => new IdentityClient({ source, maxStaleMs: 10 })).toThrow(/maxStaleMs/);
    expect(() => new IdentityClient({} as never)).toThrow(/source must be a ChangeSource/);
  });

  it('leaves no timer behind after close', async () => {
    await client.start();
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await client.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
