import { createHash, randomUUID } from 'node:crypto';
import { abortReason, durationMs, integer, nonEmptyString } from '@ballast/common';
import { Redis, type RedisOptions } from 'ioredis';
import { asBuffer, emptyStats, poison, resolveQueueOptions, unknownJob } from './options.ts';
import {
  type Consumer,
  type Job,
  type JobInput,
  type JobQueue,
  type JobResult,
  type JobState,
  type Lease,
  QueueClosedError,
  QueueFullError,
  type QueueOptions,
  type QueueStats,
  QueueUnavailableError,
  type ResolvedQueueOptions,
} from './types.ts';

/** Options of {@link RedisQueue}. */
export interface RedisQueueOptions extends QueueOptions {
  /**
   * Where Redis is: a `redis://` URL, or ioredis options — with `sentinels` and `name`
   * for a Sentinel-managed primary, which ioredis follows across failovers.
   * @default 'redis://127.0.0.1:6379'
   */
  connection?: string | RedisOptions;
  /** Prefix of every key. @default 'ballast:' */
  prefix?: string;
  /** Consumer group name. @default 'workers' */
  group?: string;
  /**
   * Replicas that must hold a job before `enqueue` resolves (`WAIT`), and that must
   * hold a result before it is acknowledged. 0 for a standalone server.
   * @default 1
   */
  minReplicas?: number;
  /** How long `WAIT` may take, ms; beyond it enqueue throws {@link QueueUnavailableError}. @default 2000 */
  replicationTimeoutMs?: number;
  /** Waiters re-check their job this often, ms, in case a completion notice was missed during a failover. @default 1000 */
  pollMs?: number;
}

// Atomic enqueue: bounded depth (the stream holds only live jobs, since finished ones
// are deleted), idempotent per id, job state and stream entry written together.
const ENQUEUE = `
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'resent', ARGV[5]) -- a write, so that a WAIT after it covers the job
  return -1
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'state', 'pending', 'attempts', 0, 'ttl', ARGV[8])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
return redis.call('XADD', KEYS[1], '*', 'id', ARGV[2], 'params', ARGV[3], 'deadlineAt', ARGV[4], 'enqueuedAt', ARGV[5], 'data', ARGV[6])`;

// Takes back an enqueue the client was refused (not replicated in time), unless a
// consumer has begun it: a resent enqueue of the same id then starts afresh.
const UNDO = `
if redis.call('HGET', KEYS[2], 'state') ~= 'pending' or redis.call('HGET', KEYS[2], 'attempts') ~= '0' then return 0 end
redis.call('DEL', KEYS[2])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1`;

// Called when a consumer receives an entry: counts the attempt, says whether to run it.
const BEGIN = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 'gone' end
if state ~= 'pending' then return state end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if n > tonumber(ARGV[1]) then return 'poison' end
return 'ok:' .. n`;

// A delivery handed back unfinished (graceful shutdown) is not an attempt.
const UNBEGIN = `
if redis.call('HGET', KEYS[1], 'state') == 'pending' then redis.call('HINCRBY', KEYS[1], 'attempts', -1) end
return 1`;

// Stores a final state (unless one is stored already), then acknowledges and deletes
// the stream entry and tells waiters: the acknowledgement never precedes the result.
const FINISH = `
local stored = 0
if ARGV[3] ~= '' and redis.call('HGET', KEYS[2], 'state') == 'pending' then
  redis.call('HSET', KEYS[2], 'state', ARGV[3], 'data', ARGV[4], 'info', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], redis.call('HGET', KEYS[2], 'ttl') or ARGV[6])
  stored = 1
end
if ARGV[2] ~= '' then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[1], ARGV[2])
end
redis.call('PUBLISH', ARGV[7], ARGV[8])
return stored`;

type Finish = { state: '' | JobResult['status']; data?: Uint8Array; info?: string };

/**
 * The distributed queue: a Redis Stream read through a consumer group.
 *
 * - `enqueue` runs one script (depth check, job state, `XADD`) and then `WAIT`s until
 *   `minReplicas` replicas have it, so an acknowledged job survives a primary crash.
 * - Consumers read with `XREADGROUP`; a held job's idle time is reset every
 *   `leaseMs / 3`; jobs idle longer than `leaseMs` (their consumer died) are taken
 *   over with `XAUTOCLAIM`.
 * - The result is stored, replicated, and only then the entry acknowledged (`XACK`) and
 *   deleted; waiters learn through a pub/sub notice (with polling as a fallback).
 * - With `connection: { sentinels, name }`, ioredis asks Sentinel for the primary and
 *   follows it when Sentinel promotes a replica.
 */
export class RedisQueue implements JobQueue {
  readonly kind = 'redis' as const;
  readonly #options: ResolvedQueueOptions;
  readonly #client: Redis;
  readonly #stream: string;
  readonly #channel: string;
  readonly #prefix: string;
  readonly #group: string;
  readonly #minReplicas: number;
  readonly #replicationTimeoutMs: number;
  readonly #pollMs: number;
  readonly #stats: QueueStats = emptyStats();
  readonly #waiters = new Map<string, Set<(result: JobResult) => void>>();
  readonly #consumers = new Set<RedisConsumer>();
  #subscriber: Redis | undefined;
  #pollTimer: ReturnType<typeof setInterval> | undefined;
  #group$: Promise<void> | undefined;
  /** Connections made so far by the main client: a change between a write and its WAIT voids the WAIT. */
  #epoch = 0;
  #closed = false;

  constructor(options: RedisQueueOptions = {}) {
    this.#options = resolveQueueOptions(options);
    this.#prefix = options.prefix ?? 'ballast:';
    this.#group = nonEmptyString('group', options.group ?? 'workers');
    this.#minReplicas = integer('minReplicas', options.minReplicas ?? 1, { min: 0 });
    this.#replicationTimeoutMs = durationMs('replicationTimeoutMs', options.replicationTimeoutMs ?? 2000, { min: 1 });
    this.#pollMs = durationMs('pollMs', options.pollMs ?? 1000, { min: 10 });
    this.#stream = `${this.#prefix}jobs`;
    this.#channel = `${this.#prefix}done`;
    const connection = options.connection ?? 'redis://127.0.0.1:6379';
    const base: RedisOptions = { lazyConnect: false, maxRetriesPerRequest: 20, failoverDetector: true };
    this.#client = typeof connection === 'string' ? new Redis(connection, base) : new Redis({ ...base, ...connection });
    // Errors surface through the commands that fail; without a listener ioredis would print them.
    this.#client.on('error', () => {});
    this.#client.on('connect', () => {
      this.#epoch++;
    });
  }

  /** @internal A fresh connection with the same settings, for blocking reads. */
  _duplicate(): Redis {
    const client = this.#client.duplicate({ maxRetriesPerRequest: null });
    client.on('error', () => {});
    return client;
  }

  get leaseMs(): number {
    return this.#options.leaseMs;
  }

  async enqueue(input: JobInput): Promise<string> {
    if (this.#closed) throw new QueueClosedError();
    const id = input.id ?? randomUUID();
    const now = this.#options.now();
    const resultTtlMs =
      input.resultTtlMs === undefined ? this.#options.resultTtlMs : durationMs('resultTtlMs', input.resultTtlMs, { min: 1 });
    const ttl = Math.ceil(Math.max(0, input.deadlineAt - now) + resultTtlMs);
    let outcome: unknown;
    let added = false;
    try {
      await this.ensureGroup();
      await this.#durably('enqueue', async () => {
        outcome = String(
          await this.#eval(
            ENQUEUE,
            [this.#stream, this.#jobKey(id)],
            [
              this.#options.maxDepth,
              id,
              JSON.stringify(input.params),
              input.deadlineAt,
              now,
              asBuffer(input.data),
              ttl,
              Math.ceil(resultTtlMs),
            ],
          ),
        );
        added ||= isEntryId(outcome);
      });
    } catch (error) {
      // Refused to the client: a job added here must not run anyway. Best effort: on a
      // primary that is gone, the job is gone with it unless a replica had it.
      if (isEntryId(outcome)) await this.#eval(UNDO, [this.#stream, this.#jobKey(id)], [outcome]).catch(() => {});
      throw this.#unavailable(error);
    }
    if (outcome === '0') {
      this.#stats.rejectedFull++;
      throw new QueueFullError(this.#options.maxDepth);
    }
    if (added) this.#stats.enqueued++;
    return id;
  }

  async wait(id: string, signal?: AbortSignal): Promise<JobResult> {
    if (signal?.aborted) throw abortReason(signal);
    await this.#subscribe();
    if (signal?.aborted) throw abortReason(signal);
    return new Promise<JobResult>((resolve, reject) => {
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, (set = new Set()));
      const cleanup = (): void => {
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(id) === set) this.#waiters.delete(id);
        signal?.removeEventListener('abort', onAbort);
        this.#updatePolling();
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortReason(signal as AbortSignal));
      };
      const done = (result: JobResult): void => {
        cleanup();
        resolve(result);
      };
      set.add(done);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#updatePolling();
      // Registered first, then checked: a completion between the two is not missed.
      this.result(id).then(
        (state) => {
          if (state === undefined) {
            cleanup();
            reject(unknownJob(id));
          } else if (state.status !== 'pending') done(state);
        },
        () => {
          // Unreachable for now (a failover?): the poll keeps checking until the signal gives up.
        },
      );
    });
  }

  async result(id: string): Promise<JobState | undefined> {
    let fields: Record<string, Buffer>;
    try {
      fields = await this.#client.hgetallBuffer(this.#jobKey(id));
    } catch (error) {
      throw this.#unavailable(error);
    }
    const state = fields.state?.toString();
    if (state === undefined) return undefined;
    const info = fields.info?.toString() ?? '{}';
    switch (state) {
      case 'pending':
        return { id, status: 'pending' };
      case 'done':
        return { id, status: 'done', data: fields.data ?? Buffer.alloc(0), meta: JSON.parse(info) };
      case 'failed':
        return { id, status: 'failed', error: JSON.parse(info) };
      case 'expired':
      case 'cancelled':
        return { id, status: state };
      default:
        throw new QueueUnavailableError(`job ${id} has an unknown state ${JSON.stringify(state)}`);
    }
  }

  async cancel(id: string): Promise<boolean> {
    let stored: number;
    try {
      stored = Number(await this.#eval(FINISH, [this.#stream, this.#jobKey(id)], this.#finishArgs('', { state: 'cancelled' }, id)));
    } catch (error) {
      throw this.#unavailable(error);
    }
    if (stored === 1) this.#stats.cancelled++;
    return stored === 1;
  }

  consumer(name: string): Consumer {
    const consumer = new RedisConsumer(this, nonEmptyString('name', name));
    this.#consumers.add(consumer);
    return consumer;
  }

  async depth(): Promise<number> {
    try {
      return await this.#client.xlen(this.#stream);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  /** The first entry after the group's last delivered one is the oldest waiting; its id is its Redis time of arrival. */
  async oldestWaitingAgeMs(): Promise<number> {
    try {
      await this.ensureGroup();
      const groups = (await this.#client.call('XINFO', 'GROUPS', this.#stream)) as unknown[][];
      const group = groups.find((g) => g[g.indexOf('name') + 1] === this.#group);
      const last = group ? String(group[group.indexOf('last-delivered-id') + 1]) : '0-0';
      const [entries, time] = await Promise.all([this.#client.xrange(this.#stream, `(${last}`, '+', 'COUNT', 1), this.#client.time()]);
      const first = entries[0]?.[0];
      if (first === undefined) return 0;
      const nowMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
      return Math.max(0, nowMs - Number(first.split('-')[0]));
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  async ping(): Promise<void> {
    if (this.#closed) throw new QueueClosedError();
    const timeout = new Promise<never>((_, reject) => {
      const timer = setTimeout(() => reject(new QueueUnavailableError('Redis did not answer PING within 1000 ms')), 1000);
      timer.unref();
    });
    await Promise.race([this.#client.ping(), timeout]);
  }

  stats(): QueueStats {
    return { ...this.#stats };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#pollTimer) clearInterval(this.#pollTimer);
    await Promise.all([...this.#consumers].map((c) => c.close()));
    this.#subscriber?.disconnect();
    this.#client.disconnect();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- used by RedisConsumer ------------------------------------------------------

  /** @internal Creates the consumer group (and stream) once. */
  ensureGroup(): Promise<void> {
    this.#group$ ??= this.#client.call('XGROUP', 'CREATE', this.#stream, this.#group, '0', 'MKSTREAM').then(
      () => undefined,
      (error: Error) => {
        if (!String(error.message).includes('BUSYGROUP')) {
          this.#group$ = undefined;
          throw error;
        }
      },
    );
    return this.#group$;
  }

  /** @internal */
  _forget(consumer: RedisConsumer): void {
    this.#consumers.delete(consumer);
  }

  /** @internal Reads one new entry for `consumer` on its blocking connection. */
  async _read(client: Redis, consumer: string, blockMs: number): Promise<RawEntry | undefined> {
    const reply = (await client.callBuffer(
      'XREADGROUP',
      'GROUP',
      this.#group,
      consumer,
      'COUNT',
      1,
      'BLOCK',
      blockMs,
      'STREAMS',
      this.#stream,
      '>',
    )) as Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
    const entry = reply?.[0]?.[1]?.[0];
    return entry ? parseEntry(entry) : undefined;
  }

  /**
   * @internal Takes over one entry idle longer than `leaseMs`. `XAUTOCLAIM` looks at no
   * more than ten pending entries per call, so the scan follows its cursor through the
   * whole pending list: a dead consumer's job behind many held by live consumers is
   * still found.
   */
  async _reclaim(consumer: string): Promise<RawEntry | undefined> {
    let cursor = '0-0';
    do {
      const reply = (await this.#client.callBuffer(
        'XAUTOCLAIM',
        this.#stream,
        this.#group,
        consumer,
        this.#options.leaseMs,
        cursor,
        'COUNT',
        1,
      )) as [Buffer, Array<[Buffer, Buffer[]] | null>] | null;
      const entry = reply?.[1]?.[0];
      if (entry) {
        this.#stats.reclaimed++;
        return parseEntry(entry);
      }
      cursor = reply?.[0]?.toString() ?? '0-0';
    } while (cursor !== '0-0');
    return undefined;
  }

  /** @internal Hands an unfinished delivery back: it does not count as an attempt, and is reclaimable at once. */
  async _release(consumer: string, entryId: string, id: string): Promise<void> {
    await this.#eval(UNBEGIN, [this.#jobKey(id)], []);
    await this._touch(consumer, [entryId], this.#options.leaseMs * 10);
  }

  /** @internal Resets the idle time of held entries (renews their leases), or sets it past the lease to hand them back. */
  async _touch(consumer: string, entryIds: string[], idleMs = 0): Promise<void> {
    if (entryIds.length === 0) return;
    await this.#client.call('XCLAIM', this.#stream, this.#group, consumer, 0, ...entryIds, 'IDLE', idleMs, 'JUSTID');
  }

  /**
   * @internal Decides what to do with a received entry: a lease to run, or undefined
   * when the entry was expired, cancelled, poisoned or forgotten (and is now acknowledged).
   */
  async _begin(consumer: RedisConsumer, entry: RawEntry): Promise<Lease | undefined> {
    const { job, entryId } = entry;
    const verdict = String(await this.#eval(BEGIN, [this.#jobKey(job.id)], [this.#options.maxAttempts]));
    if (verdict.startsWith('ok:')) {
      if (this.#options.now() > job.deadlineAt) {
        this.#stats.expired++;
        await this._finish(entryId, job.id, { state: 'expired' });
        return undefined;
      }
      return consumer._lease({ ...job, attempt: Number(verdict.slice(3)) }, entryId);
    }
    if (verdict === 'poison') {
      this.#stats.failed++;
      await this._finish(entryId, job.id, { state: 'failed', info: JSON.stringify(poison(job.id, this.#options.maxAttempts)) });
      return undefined;
    }
    // Already final (cancelled, or finished by a consumer we reclaimed from) or forgotten.
    await this._finish(entryId, job.id, { state: '' });
    return undefined;
  }

  /** @internal Stores the final state, waits for replication, acknowledges. */
  async _finish(entryId: string, id: string, finish: Finish): Promise<void> {
    // Store and replicate the result before the acknowledgement: if the primary dies in
    // between, the unacknowledged entry is reclaimed and run again on the new primary.
    if (finish.state !== '') {
      await this.#durably('result', () => this.#eval(FINISH, [this.#stream, this.#jobKey(id)], this.#finishArgs('', finish, id)));
    }
    await this.#eval(FINISH, [this.#stream, this.#jobKey(id)], this.#finishArgs(entryId, { state: '' }, id));
    if (finish.state === 'done') this.#stats.completed++;
    else if (finish.state === 'failed') this.#stats.failed++;
  }

  #finishArgs(entryId: string, finish: Finish, id: string): Array<string | number | Buffer> {
    const data = finish.data ? asBuffer(finish.data) : '';
    return [this.#group, entryId, finish.state, data, finish.info ?? '{}', this.#options.resultTtlMs, this.#channel, id];
  }

  /**
   * Runs `write`, then `WAIT`s for `minReplicas`. `WAIT` speaks for the writes of its own
   * connection only: when ioredis reconnects in between (a failover) it resends the
   * pending `WAIT` to the new primary, where it would vouch for a write that may never
   * have reached that server. So a reconnect during the two means: write again (every
   * write here is idempotent) and wait again, on the new connection.
   */
  async #durably(what: string, write: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const epoch = this.#epoch;
      await write();
      await this.#replicated(what);
      if (epoch === this.#epoch) return;
      if (attempt === 3) throw new QueueUnavailableError(`${what}: the connection to Redis kept changing while waiting for replicas`);
    }
  }

  async #replicated(what: string): Promise<void> {
    if (this.#minReplicas === 0) return;
    const acked = Number(await this.#client.call('WAIT', this.#minReplicas, this.#replicationTimeoutMs));
    if (acked < this.#minReplicas) {
      throw new QueueUnavailableError(
        `${what} reached ${acked} of ${this.#minReplicas} required replicas within ${this.#replicationTimeoutMs} ms`,
      );
    }
  }

  #jobKey(id: string): string {
    return `${this.#prefix}job:${id}`;
  }

  async #subscribe(): Promise<void> {
    if (this.#subscriber) return;
    const subscriber = this.#client.duplicate({ maxRetriesPerRequest: null });
    subscriber.on('error', () => {});
    this.#subscriber = subscriber;
    subscriber.on('message', (_channel: string, id: string) => {
      if (this.#waiters.has(id)) this.#deliver(id);
    });
    await subscriber.subscribe(this.#channel);
  }

  #deliver(id: string): void {
    this.result(id).then(
      (state) => {
        if (!state || state.status === 'pending') return;
        const set = this.#waiters.get(id);
        if (set) for (const done of [...set]) done(state);
      },
      () => {
        // Unreachable now; the poll tries again.
      },
    );
  }

  #updatePolling(): void {
    if (this.#waiters.size > 0 && !this.#pollTimer && !this.#closed) {
      this.#pollTimer = setInterval(() => {
        for (const id of this.#waiters.keys()) this.#deliver(id);
      }, this.#pollMs);
      this.#pollTimer.unref();
    } else if (this.#waiters.size === 0 && this.#pollTimer) {
      clearInterval(this.#pollTimer);
      this.#pollTimer = undefined;
    }
  }

  #unavailable(error: unknown): Error {
    if (error instanceof QueueUnavailableError || error instanceof QueueClosedError) return error;
    return new QueueUnavailableError(`queue unavailable: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }

  #shas = new Map<string, string>();

  async #eval(script: string, keys: string[], args: Array<string | number | Buffer>): Promise<unknown> {
    let sha = this.#shas.get(script);
    if (!sha) this.#shas.set(script, (sha = createHash('sha1').update(script).digest('hex')));
    try {
      return await this.#client.call('EVALSHA', sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return await this.#client.call('EVAL', script, keys.length, ...keys, ...args);
    }
  }
}

function isEntryId(value: unknown): value is string {
  return typeof value === 'string' && value.includes('-') && value !== '-1';
}

interface RawEntry {
  entryId: string;
  job: Omit<Job, 'attempt'>;
}

function parseEntry([rawId, fields]: [Buffer, Buffer[]]): RawEntry {
  const map = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set((fields[i] as Buffer).toString(), fields[i + 1] as Buffer);
  return {
    entryId: rawId.toString(),
    job: {
      id: map.get('id')?.toString() ?? '',
      params: JSON.parse(map.get('params')?.toString() ?? '{}'),
      deadlineAt: Number(map.get('deadlineAt')?.toString()),
      enqueuedAt: Number(map.get('enqueuedAt')?.toString()),
      data: map.get('data') ?? Buffer.alloc(0),
    },
  };
}

class RedisConsumer implements Consumer {
  readonly name: string;
  readonly #queue: RedisQueue;
  readonly #held = new Set<string>();
  #client: Redis | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastReclaim = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(queue: RedisQueue, name: string) {
    this.#queue = queue;
    this.name = name;
  }

  async next(signal?: AbortSignal): Promise<Lease> {
    const leaseMs = this.#queue.leaseMs;
    const blockMs = Math.max(10, Math.min(1000, Math.floor(leaseMs / 2)));
    this.#client ??= this.#queue._duplicate();
    this.#timer ??= setInterval(() => {
      this.#queue._touch(this.name, [...this.#held]).catch(() => {});
    }, leaseMs / 3);
    this.#timer.unref();
    await this.#queue.ensureGroup();
    while (true) {
      if (this.#closed) throw new QueueClosedError();
      if (signal?.aborted) throw abortReason(signal);
      let entry: RawEntry | undefined;
      if (performance.now() - this.#lastReclaim >= blockMs) {
        this.#lastReclaim = performance.now();
        entry = await this.#queue._reclaim(this.name);
      }
      entry ??= await this.#read(blockMs, signal);
      if (!entry) continue;
      if (this.#closed || signal?.aborted) {
        // Received after we stopped wanting it: hand it straight back.
        await this.#queue._touch(this.name, [entry.entryId], leaseMs * 10);
        continue;
      }
      const lease = await this.#queue._begin(this, entry);
      if (lease) return lease;
    }
  }

  async #read(blockMs: number, signal?: AbortSignal): Promise<RawEntry | undefined> {
    try {
      return await this.#queue._read(this.#client as Redis, this.name, blockMs);
    } catch (error) {
      if (this.#closed) throw new QueueClosedError();
      if (String((error as Error).message).includes('NOGROUP')) {
        await this.#queue.ensureGroup();
        return undefined;
      }
      // Failover in progress or Redis unreachable: back off briefly and try again.
      await new Promise((r) => setTimeout(r, 100));
      if (signal?.aborted) throw abortReason(signal);
      return undefined;
    }
  }

  /** @internal */
  _lease(job: Job, entryId: string): Lease {
    this.#held.add(entryId);
    const finish = async (f: Finish): Promise<void> => {
      try {
        await this.#queue._finish(entryId, job.id, f);
      } finally {
        this.#held.delete(entryId);
      }
    };
    return {
      job,
      complete: (data, meta) => finish({ state: 'done', data, info: JSON.stringify(meta) }),
      fail: (error) => finish({ state: 'failed', info: JSON.stringify(error) }),
      release: async () => {
        this.#held.delete(entryId);
        await this.#queue._release(this.name, entryId, job.id);
      },
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#client?.disconnect();
    this.#queue._forget(this);
  }
}
