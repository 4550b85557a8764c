import type { Unsubscribe } from '@ballast/common';
import { Redis, type RedisOptions } from 'ioredis';
import type { ChangeBatch, ChangeSink, ChangeSource, ChangesSince, Lookup, Snapshot } from './feed.ts';
import type { Change, KeyEntry, TenantEntry } from './model.ts';

/** Options of {@link RedisFeed}. */
export interface RedisFeedOptions {
  /** `redis://host:port`, or ioredis options (`{ sentinels, name }` for Sentinel). */
  connection: string | RedisOptions;
  /** Prefix of every key and of the channel. @default 'ballast:identity:' */
  prefix?: string;
  /** Changes kept in the log for catching up; a cache further behind reloads the snapshot. @default 10000 */
  maxLog?: number;
  /** A command taking longer fails (the edge cache then serves what it has), ms. @default 1000 */
  commandTimeoutMs?: number;
}

/**
 * Publishes one batch atomically: each entry replaces the snapshot's only when newer,
 * new versions go to the log (trimmed to ARGV[2] entries, the highest trimmed version
 * kept as the floor), the feed's version advances, and the batch is published.
 * KEYS: keys hash, tenants hash, version, log, floor. ARGV: channel, maxLog, change JSON….
 */
const PUBLISH = `
local prev = tonumber(redis.call('GET', KEYS[3]) or '0')
local top = prev
local fresh = {}
for i = 3, #ARGV do
  local c = cjson.decode(ARGV[i])
  local h, field = KEYS[2], c.id
  if c.kind == 'key' then h, field = KEYS[1], c.hash end
  local current = redis.call('HGET', h, field)
  if (not current) or cjson.decode(current).version < c.version then redis.call('HSET', h, field, ARGV[i]) end
  if c.version > top then
    redis.call('ZADD', KEYS[4], c.version, ARGV[i])
    fresh[#fresh + 1] = ARGV[i]
    top = c.version
  end
end
if top == prev then return prev end
redis.call('SET', KEYS[3], top)
local n = redis.call('ZCARD', KEYS[4])
local maxLog = tonumber(ARGV[2])
if n > maxLog then
  local cut = redis.call('ZRANGE', KEYS[4], n - maxLog - 1, n - maxLog - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, n - maxLog - 1)
  redis.call('SET', KEYS[5], cut[2])
end
redis.call('PUBLISH', ARGV[1], '{"prev":' .. prev .. ',"version":' .. top .. ',"changes":[' .. table.concat(fresh, ',') .. ']}')
return top
`;

/** KEYS: keys hash, tenants hash, version. ARGV: key hash. Returns version, key JSON, tenant JSON. */
const LOOKUP = `
local key = redis.call('HGET', KEYS[1], ARGV[1])
local tenant = false
if key then tenant = redis.call('HGET', KEYS[2], cjson.decode(key).tenantId) end
return {redis.call('GET', KEYS[3]) or '0', key, tenant}
`;

/** KEYS: version, log, floor. ARGV: since, limit. Returns 'resync', or version and change JSONs. */
const SINCE = `
local since = tonumber(ARGV[1])
if since < tonumber(redis.call('GET', KEYS[3]) or '0') then return 'resync' end
local changes = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. since, '+inf', 'LIMIT', 0, tonumber(ARGV[2]))
local version = redis.call('GET', KEYS[1]) or '0'
if #changes == tonumber(ARGV[2]) then version = cjson.decode(changes[#changes]).version end
return {tostring(version), changes}
`;

const SINCE_LIMIT = 1000;

/**
 * The change feed on Redis, both sides. The snapshot is two hashes (key entries by key
 * hash, tenants by id) whose entries carry their version; the log is a sorted set by
 * version; batches are published on `<prefix>changes`. The management plane publishes
 * with one script per batch, so snapshot, log, version and notification never disagree.
 *
 * Commands fail fast while Redis is unreachable (no offline queue): the edge cache
 * then answers from what it holds rather than waiting.
 */
export class RedisFeed implements ChangeSink, ChangeSource, AsyncDisposable {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #options: RedisFeedOptions;
  readonly #prefix: string;
  readonly #maxLog: number;
  readonly #listeners = new Set<(batch: ChangeBatch) => void>();
  #subscriber: Redis | undefined;

  constructor(options: RedisFeedOptions) {
    this.#options = options;
    this.#prefix = options.prefix ?? 'ballast:identity:';
    this.#maxLog = options.maxLog ?? 10_000;
    this.#redis = connect(options, { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    this.#redis.defineCommand('identityPublish', { numberOfKeys: 5, lua: PUBLISH });
    this.#redis.defineCommand('identityLookup', { numberOfKeys: 3, lua: LOOKUP });
    this.#redis.defineCommand('identitySince', { numberOfKeys: 3, lua: SINCE });
  }

  /** Resolves once the command connection is ready (or rejects after `timeoutMs`). */
  ready(timeoutMs = 5000): Promise<void> {
    if (this.#redis.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#redis.off('ready', onReady);
        reject(new Error(`Redis did not become ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.#redis.once('ready', onReady);
    });
  }

  async publishedVersion(): Promise<number> {
    return Number((await this.#redis.get(`${this.#prefix}version`)) ?? 0);
  }

  async publish(changes: readonly Change[]): Promise<void> {
    if (changes.length === 0) return;
    const p = this.#prefix;
    const keys = [`${p}keys`, `${p}tenants`, `${p}version`, `${p}log`, `${p}floor`];
    const args = [`${p}changes`, String(this.#maxLog), ...changes.map((c) => JSON.stringify(c))];
    await (this.#redis as unknown as Scripts).identityPublish(...keys, ...args);
  }

  async snapshot(): Promise<Snapshot> {
    const p = this.#prefix;
    const replies = await this.#redis.multi().get(`${p}version`).hgetall(`${p}keys`).hgetall(`${p}tenants`).exec();
    if (!replies) throw new Error('the snapshot transaction was aborted');
    for (const [error] of replies) if (error) throw error;
    const [version, keys, tenants] = replies.map(([, value]) => value) as [string | null, Record<string, string>, Record<string, string>];
    return {
      version: Number(version ?? 0),
      keys: Object.values(keys).map((json) => JSON.parse(json) as KeyEntry),
      tenants: Object.values(tenants).map((json) => JSON.parse(json) as TenantEntry),
    };
  }

  async lookup(hash: string): Promise<Lookup> {
    const p = this.#prefix;
    const [version, key, tenant] = (await (this.#redis as unknown as Scripts).identityLookup(
      `${p}keys`,
      `${p}tenants`,
      `${p}version`,
      hash,
    )) as [string, string | null, string | null];
    return {
      version: Number(version),
      ...(key && { key: JSON.parse(key) as KeyEntry }),
      ...(tenant && { tenant: JSON.parse(tenant) as TenantEntry }),
    };
  }

  async changesSince(version: number): Promise<ChangesSince> {
    const p = this.#prefix;
    const reply = (await (this.#redis as unknown as Scripts).identitySince(
      `${p}version`,
      `${p}log`,
      `${p}floor`,
      String(version),
      String(SINCE_LIMIT),
    )) as 'resync' | [string, string[]];
    if (reply === 'resync') return 'resync';
    return { version: Number(reply[0]), changes: reply[1].map((json) => JSON.parse(json) as Change) };
  }

  subscribe(listener: (batch: ChangeBatch) => void): Unsubscribe {
    this.#listeners.add(listener);
    if (!this.#subscriber) {
      const subscriber = connect(this.#options, {});
      subscriber.on('message', (_channel: string, message: string) => {
        let batch: ChangeBatch;
        try {
          batch = JSON.parse(message) as ChangeBatch;
        } catch {
          return; // Not ours; the poll catches up on anything real.
        }
        for (const l of this.#listeners) l(batch);
      });
      subscriber.subscribe(`${this.#prefix}changes`).catch(() => {});
      this.#subscriber = subscriber;
    }
    return () => {
      this.#listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
    this.#redis.disconnect();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

type Scripts = Record<'identityPublish' | 'identityLookup' | 'identitySince', (...args: string[]) => Promise<unknown>>;

function connect(options: RedisFeedOptions, extra: RedisOptions): Redis {
  const base: RedisOptions = {
    commandTimeout: options.commandTimeoutMs ?? 1000,
    connectTimeout: 2000,
    // Reconnect quickly and forever: an API server keeps serving from its cache meanwhile.
    retryStrategy: (times) => Math.min(100 * times, 1000),
    ...extra,
  };
  const client =
    typeof options.connection === 'string' ? new Redis(options.connection, base) : new Redis({ ...options.connection, ...base });
  // Errors surface on the commands that fail; the connection itself just reconnects.
  client.on('error', () => {});
  return client;
}
