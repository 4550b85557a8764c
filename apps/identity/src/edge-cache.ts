import { type Clock, durationMs, Emitter, integer, type Listener, systemClock, type Unsubscribe } from '@ballast/common';
import { type AuthRefusal, parseAuthorization, REFUSALS } from './authorization.ts';
import type { ChangeBatch, ChangeSource, Lookup } from './feed.ts';
import { hashKey } from './key.ts';
import type { Change, KeyEntry, TenantEntry } from './model.ts';

/** An admitted caller: the tenant (with its plan and quota) and which key it used. */
export interface AuthGrant {
  readonly ok: true;
  readonly tenant: TenantEntry;
  readonly keyId: string;
  /** The key's display prefix (`blst_` + 4), the only part of a key fit for logs. */
  readonly prefix: string;
}

/** The answer to one request's credentials. */
export type AuthDecision = AuthGrant | AuthRefusal;

/** Options of {@link IdentityClient}. */
export interface IdentityClientOptions {
  /** Where identity data comes from: an {@link InProcessFeed} (embedded) or a {@link RedisFeed}. */
  source: ChangeSource;
  /**
   * How often the cache asks the source for changes it may have missed (a lost publish,
   * a reconnect), ms. A revocation whose publish is lost is seen within this. @default 1000
   */
  pollIntervalMs?: number;
  /** The cache is fresh while its version was confirmed by the source within this, ms; readiness reports it stale after. @default 5000 */
  freshTtlMs?: number;
  /**
   * How long an unknown key is answered 401 from the cache before the source is asked
   * again, ms (at most 2000: a new key whose publish was lost is never held back longer).
   * @default 1000
   */
  missTtlMs?: number;
  /**
   * How long after the source was last reachable the cache still admits the keys it
   * holds, ms; past it, 503. Revoked keys are refused forever. @default 1_800_000 (30 min)
   */
  maxStaleMs?: number;
  /** Unknown keys remembered at once; the oldest are forgotten first. @default 10000 */
  maxMisses?: number;
  /** Lookups in flight at once; beyond it a miss is answered 503 (a flood of made-up keys cannot pile up on the source). @default 256 */
  maxLookups?: number;
  clock?: Clock;
}

/** Counters and state of an {@link IdentityClient}. */
export interface IdentityClientStats {
  /** Decisions answered from the cache. */
  hits: number;
  /** Calls to the source for a key not in the cache (the only store reads a request can cause). */
  lookups: number;
  lookupErrors: number;
  /** Refused on shape or checksum, without a lookup. */
  malformed: number;
  unknown: number;
  revoked: number;
  unavailable: number;
  keys: number;
  tenants: number;
  cachedMisses: number;
  version: number;
  resyncs: number;
}

/** What readiness reports about identity. */
export interface IdentityHealth {
  /** A snapshot has been loaded: keys can be verified. */
  readonly loaded: boolean;
  /** The source confirmed the cache's version within `freshTtlMs`. */
  readonly fresh: boolean;
  /** Loaded but not fresh: serving from what the cache holds. */
  readonly stale: boolean;
  readonly version: number;
  /** Time since the source last confirmed the cache, ms (`null` before the first time). */
  readonly confirmedAgeMs: number | null;
  readonly source: ChangeSource['kind'];
}

/** Events of an {@link IdentityClient}. */
export interface IdentityClientEvents {
  /** The whole snapshot was (re)loaded. */
  resync: { version: number; keys: number; tenants: number };
  /** The source could not be reached. */
  sourceError: { error: unknown };
}

interface Miss {
  readonly at: number;
  readonly version: number;
}

/**
 * The identity data plane on one API server: an edge cache of every key entry and
 * tenant, filled from the feed's snapshot and kept current by its published changes.
 *
 * - A key of the wrong shape or checksum is refused without any lookup.
 * - A hit is decided from memory (SHA-256 and a map read).
 * - Every entry carries the version of the change that produced it and is replaced only
 *   by a newer one: a revocation is a tombstone, so a lookup that read the key before it
 *   was revoked and lands afterwards cannot bring it back.
 * - An unknown key is remembered for `missTtlMs` (≤ 2 s), and a newer change replaces
 *   the memory at once.
 * - A poll every `pollIntervalMs` catches up on anything a lost publish left out.
 * - Availability first: while the source is unreachable the cache keeps deciding from
 *   what it holds, for `maxStaleMs`; revoked keys stay refused.
 *
 * @example
 * ```ts
 * const identity = new IdentityClient({ source: new RedisFeed({ connection: 'redis://127.0.0.1:6379' }) });
 * await identity.start();
 * const decision = await identity.verify(request.headers.get('authorization'));
 * if (!decision.ok) return new Response(decision.message, { status: decision.status });
 * ```
 */
export class IdentityClient implements AsyncDisposable {
  readonly source: ChangeSource;
  readonly #keys = new Map<string, KeyEntry>();
  readonly #tenants = new Map<string, TenantEntry>();
  readonly #misses = new Map<string, Miss>();
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #events = new Emitter<IdentityClientEvents>();
  readonly #clock: Clock;
  readonly #pollIntervalMs: number;
  readonly #freshTtlMs: number;
  readonly #missTtlMs: number;
  readonly #maxStaleMs: number;
  readonly #maxMisses: number;
  readonly #maxLookups: number;
  #version = 0;
  #loaded = false;
  #confirmedAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: Unsubscribe | undefined;
  #syncing: Promise<void> | undefined;
  #closed = false;
  readonly #stats = { hits: 0, lookups: 0, lookupErrors: 0, malformed: 0, unknown: 0, revoked: 0, unavailable: 0, resyncs: 0 };

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: IdentityClientOptions) {
    if (!options?.source || typeof options.source.lookup !== 'function') throw new TypeError('source must be a ChangeSource');
    this.source = options.source;
    this.#clock = options.clock ?? systemClock;
    this.#pollIntervalMs = durationMs('pollIntervalMs', options.pollIntervalMs ?? 1000, { min: 10 });
    this.#freshTtlMs = durationMs('freshTtlMs', options.freshTtlMs ?? 5000, { min: this.#pollIntervalMs });
    this.#missTtlMs = durationMs('missTtlMs', options.missTtlMs ?? 1000, { max: 2000 });
    this.#maxStaleMs = durationMs('maxStaleMs', options.maxStaleMs ?? 30 * 60_000, { min: this.#freshTtlMs });
    this.#maxMisses = integer('maxMisses', options.maxMisses ?? 10_000, { min: 1 });
    this.#maxLookups = integer('maxLookups', options.maxLookups ?? 256, { min: 1 });
  }

  /**
   * Subscribes to the feed, loads the snapshot and starts polling. Resolves once the
   * first load was tried: true when it succeeded; when the source is unreachable the
   * poll keeps trying, and keys are answered 503 until a snapshot is loaded.
   */
  async start(): Promise<boolean> {
    if (this.#timer || this.#closed) return this.#loaded;
    this.#unsubscribe = this.source.subscribe((batch) => this.#onBatch(batch));
    this.#timer = setInterval(() => void this.sync(), this.#pollIntervalMs);
    this.#timer.unref();
    await this.sync();
    return this.#loaded;
  }

  /**
   * Decides on an `Authorization` header value. Synchronous on a cache hit and on every
   * refusal that needs no lookup; a promise when the source must be asked.
   */
  verify(authorization: string | null | undefined): AuthDecision | Promise<AuthDecision> {
    const parsed = parseAuthorization(authorization);
    if (!parsed.ok) {
      if (parsed.code === 'ERR_BALLAST_AUTH_MALFORMED') this.#stats.malformed++;
      return parsed;
    }
    return this.verifyKey(parsed.key);
  }

  /** Decides on a key whose shape and checksum are already checked (see {@link checkKey}). */
  verifyKey(key: string): AuthDecision | Promise<AuthDecision> {
    const hash = hashKey(key);
    const decided = this.#decide(hash, this.#clock.now());
    if (decided !== undefined) {
      this.#stats.hits++;
      return this.#count(decided);
    }
    return this.#fill(hash);
  }

  /**
   * Asks the source for what the cache may have missed: the whole snapshot the first
   * time (or when the feed's log no longer reaches back to the cache's version), else the
   * changes since the cache's version. Runs on its own every `pollIntervalMs`.
   */
  sync(): Promise<void> {
    this.#syncing ??= this.#sync().finally(() => {
      this.#syncing = undefined;
    });
    return this.#syncing;
  }

  /** Loaded, fresh or stale, version: what `/readyz` reports. */
  health(): IdentityHealth {
    const now = this.#clock.now();
    const age = this.#confirmedAt === undefined ? null : now - this.#confirmedAt;
    const fresh = age !== null && age <= this.#freshTtlMs;
    return {
      loaded: this.#loaded,
      fresh,
      stale: this.#loaded && !fresh,
      version: this.#version,
      confirmedAgeMs: age,
      source: this.source.kind,
    };
  }

  /** The tenant entry the cache holds for `id`. */
  tenant(id: string): TenantEntry | undefined {
    return this.#tenants.get(id);
  }

  stats(): IdentityClientStats {
    return {
      ...this.#stats,
      keys: this.#keys.size,
      tenants: this.#tenants.size,
      cachedMisses: this.#misses.size,
      version: this.#version,
    };
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof IdentityClientEvents>(event: K, listener: Listener<IdentityClientEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /** Stops polling and listening; does not close the source (its owner does). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#unsubscribe?.();
    await this.#syncing;
    await Promise.allSettled(this.#inflight.values());
    this.#events.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #decide(hash: string, now: number): AuthDecision | undefined {
    const entry = this.#keys.get(hash);
    if (entry !== undefined) {
      if (entry.status === 'revoked') return REFUSALS.revoked;
      const tenant = this.#tenants.get(entry.tenantId);
      if (tenant === undefined) return undefined; // its tenant is not here yet: look both up
      if (this.#confirmedAt === undefined || now - this.#confirmedAt > this.#maxStaleMs) return REFUSALS.unavailable;
      return { ok: true, tenant, keyId: entry.keyId, prefix: entry.prefix };
    }
    const miss = this.#misses.get(hash);
    if (miss !== undefined && now - miss.at < this.#missTtlMs) return REFUSALS.unknown;
    return undefined;
  }

  async #fill(hash: string): Promise<AuthDecision> {
    let pending = this.#inflight.get(hash);
    if (pending === undefined) {
      if (this.#inflight.size >= this.#maxLookups || this.#closed) return this.#count(REFUSALS.unavailable);
      this.#stats.lookups++;
      pending = this.source.lookup(hash).then(
        (found) => this.#applyLookup(hash, found),
        (error: unknown) => {
          this.#stats.lookupErrors++;
          this.#emit('sourceError', { error });
        },
      );
      this.#inflight.set(hash, pending);
      pending.finally(() => this.#inflight.delete(hash));
    }
    await pending;
    // Decide from the cache as it is now: a revocation that arrived while the lookup was
    // in flight wins over what the lookup read.
    const decided = this.#decide(hash, this.#clock.now());
    return this.#count(decided ?? REFUSALS.unavailable);
  }

  #applyLookup(hash: string, found: Lookup): void {
    if (found.tenant) this.#apply(found.tenant);
    if (found.key) {
      this.#apply(found.key);
      return;
    }
    if (this.#keys.has(hash)) return;
    if (this.#misses.size >= this.#maxMisses) this.#misses.delete(this.#misses.keys().next().value as string);
    this.#misses.delete(hash);
    this.#misses.set(hash, { at: this.#clock.now(), version: found.version });
  }

  #apply(change: Change): void {
    if (change.kind === 'tenant') {
      const current = this.#tenants.get(change.id);
      if (current === undefined || current.version < change.version) this.#tenants.set(change.id, change);
      return;
    }
    const current = this.#keys.get(change.hash);
    if (current !== undefined && current.version >= change.version) return;
    this.#keys.set(change.hash, change);
    this.#misses.delete(change.hash);
  }

  #onBatch(batch: ChangeBatch): void {
    for (const change of batch.changes) this.#apply(change);
    // Only a batch that follows on from what the cache has moves its version; after a
    // gap (a lost publish) the poll fetches the changes in between.
    if (batch.prev <= this.#version && this.#loaded) {
      if (batch.version > this.#version) this.#version = batch.version;
      this.#confirmedAt = this.#clock.now();
    }
  }

  async #sync(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#loaded) {
        const since = await this.source.changesSince(this.#version);
        if (since !== 'resync') {
          for (const change of since.changes) this.#apply(change);
          if (since.version > this.#version) this.#version = since.version;
          this.#confirmedAt = this.#clock.now();
          return;
        }
      }
      const snapshot = await this.source.snapshot();
      for (const tenant of snapshot.tenants) this.#apply(tenant);
      for (const key of snapshot.keys) this.#apply(key);
      if (snapshot.version > this.#version) this.#version = snapshot.version;
      this.#loaded = true;
      this.#confirmedAt = this.#clock.now();
      this.#stats.resyncs++;
      this.#emit('resync', { version: this.#version, keys: this.#keys.size, tenants: this.#tenants.size });
    } catch (error) {
      this.#emit('sourceError', { error });
    }
  }

  #count(decision: AuthDecision): AuthDecision {
    if (!decision.ok) {
      if (decision.code === 'ERR_BALLAST_AUTH_UNKNOWN_KEY') this.#stats.unknown++;
      else if (decision.code === 'ERR_BALLAST_AUTH_REVOKED') this.#stats.revoked++;
      else if (decision.code === 'ERR_BALLAST_IDENTITY_UNAVAILABLE') this.#stats.unavailable++;
    }
    return decision;
  }

  #emit<K extends keyof IdentityClientEvents>(event: K, payload: IdentityClientEvents[K]): void {
    if (this.#events.has(event)) this.#events.emit(event, payload);
  }
}
