import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { abortReason, durationMs, finiteNumber, InvalidOptionError, integer, nonEmptyString } from '@ballast/common';
import { RendezvousPartitioner } from '@ballast/partitioning';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { Batcher } from './batcher.ts';
import { clusterSlot as calculateSlot, shardTag } from './cluster-slot.ts';
import { GroupWait } from './group-wait.ts';
import { finalValue, ledgerRecord, noticeOf, parseLedgerEntry, parseNotice, parseState } from './job-state.ts';
import { ledgerArgs } from './ledger.ts';
import { Membership, type MembershipSnapshot } from './membership.ts';
import { asBuffer, emptyStats, poison, resolveQueueOptions, unknownJob } from './options.ts';
import { quietFailoverDetector, reconnectWhenEnded } from './reconnect.ts';
import { EntryFeed, type RawEntry, RedisConsumer } from './redis-consumer.ts';
import { ENQUEUE, FINISH, NOTICE_RESULT_MAX_BYTES, UNDO } from './redis-scripts.ts';
import { type ServicePart, serviceStatsOf } from './service-stats.ts';
import {
  type Consumer,
  type JobInput,
  type JobParams,
  type JobQueue,
  type JobResult,
  type JobState,
  type Lease,
  type LedgerEntry,
  type LedgerOutcome,
  type LedgerReadOptions,
  QueueClosedError,
  QueueFullError,
  type QueueOptions,
  type QueueStats,
  QueueUnavailableError,
  type ResolvedQueueOptions,
  SERVICE_RING_SIZE,
  type ServiceStats,
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
   * hold a result before `complete()` resolves. 0 for a standalone server.
   * @default 1
   */
  minReplicas?: number;
  /** How long `WAIT` may take, ms; beyond it enqueue throws {@link QueueUnavailableError}. @default 2000 */
  replicationTimeoutMs?: number;
  /** Waiters re-check their job this often, ms, in case a completion notice was missed during a failover (and for jobs another handle enqueued). @default 1000 */
  pollMs?: number;
  /** This process's name among the queue's members (heartbeats, consumer names). @default `<hostname>-<pid>-<random>` */
  member?: string;
  /** Mean time between this process's heartbeats, ms. @default 250 */
  heartbeatIntervalMs?: number;
  /**
   * Silence tolerated on top of the heartbeat interval before a member is suspected, ms
   * (phi accrual's acceptable pause): a worker suspected this way has its jobs reclaimed
   * at once, a producer suspected this way has its attended jobs dropped as orphans.
   * Detection takes about `heartbeatIntervalMs + heartbeatPauseMs + 0.5 s`.
   * @default 1000
   */
  heartbeatPauseMs?: number;
  /** Heartbeats on (fast reclaim, orphan detection); off leaves only the lease. @default true */
  heartbeats?: boolean;
  /**
   * Redis Cluster instead of one primary: the queue runs `shards` streams, each under its
   * own hash tag (`<prefix>{s<n>-<k>}:…`, chosen so that shard n's slot lies in the n-th of
   * `shards` equal slot ranges: spread evenly over primaries that split the slots evenly);
   * jobs go to a shard chosen by their tenant (`params.tenant`) with rendezvous hashing,
   * so one tenant's jobs stay in order (FIFO per tenant) and adding shards moves the
   * fewest tenants. `connection` is then ignored.
   */
  cluster?: RedisClusterOptions;
}

/** Where the queue's Redis Cluster is, and how many shards it runs there. */
export interface RedisClusterOptions {
  /** Some of the cluster's nodes (ioredis discovers the rest). */
  nodes: Array<{ host: string; port: number }>;
  /** Shards (streams under their own hash tag). Changing it moves tenants between shards. @default 4 */
  shards?: number;
  /** More ioredis cluster options. */
  options?: ClusterOptions;
}

/** The FINISH arguments every job of a queue shares. */
interface FinishCommon {
  maxDepth: number;
  group: string;
  resultTtlMs: number;
  halfLifeMs: number;
  retentionMs: number;
}

/** @internal A final state to store. */
export type Finish = {
  state: LedgerOutcome;
  data?: Uint8Array;
  info?: string;
  worker?: string;
  attempt: number;
  usage?: string;
  errorCode?: string;
  reason?: 'orphaned';
  serviceMs?: number;
  /** The job's tenant (a cancel leaves it to the script, which reads the job's state). */
  tenant?: string;
  /** Member waiting for the result, told once it is replicated. */
  producer?: string;
};

/** One job of an ENQUEUE call: its key and its four arguments. */
interface EnqueueItem {
  key: string;
  args: Array<string | number | Buffer>;
}

/** One job of a FINISH call: its key, its four arguments, and whom the call notifies. */
interface FinishItem {
  key: string;
  args: Array<string | number | Buffer>;
  /** The inbox of the producer in another process the call notifies, with the notice's head. */
  notify?: { inbox: string; head: string };
  /** A consumer finishes it and will ask for its next job: the call may claim one for it. */
  prefetch: boolean;
}

/**
 * @internal How FINISH calls claim the finishing consumers' next entries (see the
 * FINISH script): the handle's entry feed says how many it can use and takes them.
 */
export interface Prefetch {
  /** Entries to claim for `finishing` consumers about to ask for their next job (0: none). */
  count(finishing: number): number;
  /** The name the entries are claimed under (the handle's consumer name in the group). */
  readonly consumer: string;
  /** Takes the claimed entries. */
  deliver(entries: RawEntry[]): void;
}

/** What a batched write gives each of its jobs: the script's answer and, when replicas are asked for, the `WAIT` that covers it. */
interface Written<T> {
  value: T;
  /** Resolves with the replicas that confirmed the write; undefined when the caller must ask (see {@link Shard.script}). */
  acked: Promise<number> | undefined;
}

const shas = new Map<string, string>();

function shaOf(script: string): string {
  let sha = shas.get(script);
  if (!sha) shas.set(script, (sha = createHash('sha1').update(script).digest('hex')));
  return sha;
}

/**
 * One shard of the queue: its keys (one hash tag in cluster mode), its script batching
 * and `WAIT` group commit. With a single primary there is one shard; on Redis Cluster,
 * `WAIT` must reach the node that took the shard's writes, on the connection that
 * carried them, so it is sent to the slot's current owner, and a change of owner (or a
 * reconnect) between a write and its `WAIT` voids the `WAIT`.
 */
class Shard {
  readonly index: number;
  readonly client: Redis;
  readonly #cluster: Cluster | undefined;
  readonly #slot: number;
  readonly stream: string;
  readonly ledger: string;
  readonly service: string;
  readonly #prefix: string;
  readonly #minReplicas: number;
  readonly group: GroupWait;
  readonly enqueues: Batcher<EnqueueItem, Written<unknown>>;
  readonly finishes: Batcher<FinishItem, Written<number>>;
  /** Connections made so far by a single-primary client: a change between a write and its WAIT voids the WAIT. */
  #connects = 0;
  /** FINISH calls that also claimed entries (each an `XREADGROUP` inside the script). */
  claims = 0;

  constructor(
    index: number,
    client: Redis,
    cluster: Cluster | undefined,
    prefix: string,
    minReplicas: number,
    timeoutMs: number,
    common: FinishCommon,
    prefetch: () => Prefetch | undefined,
  ) {
    this.index = index;
    this.client = client;
    this.#cluster = cluster;
    this.#prefix = prefix;
    this.#minReplicas = minReplicas;
    this.stream = `${prefix}jobs`;
    this.ledger = `${prefix}ledger`;
    this.service = `${prefix}service`;
    this.#slot = calculateSlot(this.stream);
    this.group = new GroupWait(async () => Number(await this.#owner().call('WAIT', minReplicas, timeoutMs)));
    this.enqueues = new Batcher(async (items) => {
      const keys = [this.stream, ...items.map((i) => i.key)];
      const { reply, acked } = await this.script(ENQUEUE, keys, [common.maxDepth, ...items.flatMap((i) => i.args)]);
      return (reply as unknown[]).map((value) => ({ value, acked }));
    });
    this.finishes = new Batcher(async (items) => {
      const inboxes = new Map<string, number>();
      for (const i of items) if (i.notify && !inboxes.has(i.notify.inbox)) inboxes.set(i.notify.inbox, inboxes.size + 1);
      const keys = [this.stream, this.ledger, this.service, ...items.map((i) => i.key), ...inboxes.keys()];
      const feed = prefetch();
      const claim = feed?.count(items.filter((i) => i.prefetch).length) ?? 0;
      const args = [
        common.group,
        common.resultTtlMs,
        common.halfLifeMs,
        common.retentionMs,
        SERVICE_RING_SIZE,
        claim,
        claim > 0 && feed ? feed.consumer : '',
        items.length,
        ...items.flatMap((i) => [...i.args, i.notify ? (inboxes.get(i.notify.inbox) as number) : 0, i.notify?.head ?? '']),
        ...[...inboxes.keys()].map((inbox) => (this.#renew(inbox) ? '1' : '')),
      ];
      const { reply, acked } = await this.script(FINISH, keys, args, true);
      const [stored, claimed] = reply as [unknown[], Array<[Buffer, Buffer[]]>];
      if (claim > 0) this.claims++;
      if (claimed.length > 0) feed?.deliver(claimed.map((entry) => parseEntry(entry, 1, this.index)));
      return stored.map((value) => ({ value: Number(value), acked }));
    });
    if (!cluster) {
      client.on('connect', () => {
        this.#connects++;
      });
    }
  }

  /**
   * Runs `script` on this shard, and the `WAIT` that covers it right behind it on the
   * same connection (Redis runs a connection's commands in order, so it vouches for the
   * script), shared with every other write sent on that connection in the same tick: one
   * round trip for both, and Redis reads them together. On Redis Cluster both go straight
   * to the connection of the node that owns the shard's slot (the cluster client could
   * hold a command back while it refreshes its slots, and the `WAIT` would overtake it);
   * when that node answers that the slot moved, the script is sent again through the
   * cluster client, which follows the redirection, and `acked` is undefined: the caller
   * asks for a `WAIT` once the script has answered.
   */
  async script(
    script: string,
    keys: string[],
    args: Array<string | number | Buffer>,
    buffers = false,
  ): Promise<Written<unknown> & { reply: unknown }> {
    // On a cluster whose slots are not known yet: through the cluster client, which waits for them.
    const owner = this.#minReplicas > 0 ? (this.#cluster ? this.#nodeOfSlot() : this.client) : undefined;
    const pipelined = owner !== undefined;
    const via =
      (client: Redis) =>
      (...command: Array<string | number | Buffer>): Promise<unknown> =>
        buffers
          ? client.callBuffer(...(command as [string, ...Array<string | number | Buffer>]))
          : client.call(...(command as [string, ...Array<string | number | Buffer>]));
    const call = via(owner ?? this.client);
    const sent = call('EVALSHA', shaOf(script), keys.length, ...keys, ...args);
    let acked = pipelined ? this.group.after() : undefined;
    try {
      return { reply: await sent, value: undefined, acked };
    } catch (error) {
      acked?.catch(() => {});
      const message = String((error as Error).message);
      if (this.#cluster && /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)/.test(message)) {
        // The slot moved (or is moving): through the cluster client, which follows it, and a WAIT after.
        const reply = await via(this.client)('EVALSHA', shaOf(script), keys.length, ...keys, ...args).catch((again: Error) => {
          if (!String(again.message).startsWith('NOSCRIPT')) throw again;
          return via(this.client)('EVAL', script, keys.length, ...keys, ...args);
        });
        return { reply, value: undefined, acked: undefined };
      }
      if (!message.startsWith('NOSCRIPT')) throw error;
      // Not in this server's script cache (a restart, a failover): sent again in full, and a WAIT after it.
      const again = call('EVAL', script, keys.length, ...keys, ...args);
      acked = pipelined ? this.group.after() : undefined;
      return { reply: await again, value: undefined, acked };
    }
  }

  jobKey(id: string): string {
    return `${this.#prefix}job:${id}`;
  }

  /** When each inbox's lifetime was last renewed (performance.now()). */
  readonly #renewed = new Map<string, number>();

  #renew(inbox: string): boolean {
    return renewalDue(this.#renewed, inbox);
  }

  /** Who takes this shard's writes now, and over which connection: equal before and after a WAIT, or the WAIT is void. */
  epoch(): string {
    if (!this.#cluster) return String(this.#connects);
    const key = this.#cluster.slots[this.#slot]?.[0] ?? '?';
    const node = this.#nodeByKey(key);
    return `${key}/${node ? (connectsOf.get(node) ?? 0) : -1}`;
  }

  #owner(): Redis {
    if (!this.#cluster) return this.client;
    const node = this.#nodeOfSlot();
    if (!node) throw new QueueUnavailableError(`no Redis Cluster node holds slot ${this.#slot} (shard ${this.index})`);
    return node;
  }

  /** The connection of the node that owns the shard's slot, as the cluster client knows it. */
  #nodeOfSlot(): Redis | undefined {
    return this.#nodeByKey(this.#cluster?.slots[this.#slot]?.[0] ?? '');
  }

  #nodeByKey(key: string): Redis | undefined {
    return this.#cluster?.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === key);
  }
}

/** Connections made by each node of a cluster client. */
const connectsOf = new WeakMap<Redis, number>();

/**
 * The distributed queue: a Redis Stream read through a consumer group. Every Redis
 * command is shared by as many jobs as possible, since what Redis spends per job is
 * mostly per command: jobs enqueued (or finished) while a call is under way, or in the
 * same turn of the event loop, go in one script call, with one `WAIT` behind it.
 *
 * - `enqueue` runs the ENQUEUE script (depth check, per job an `XADD` and a
 *   `SET … NX PX` of its state), then `WAIT`s until `minReplicas` replicas have it —
 *   so an acknowledged job survives a primary crash.
 * - A process's consumers share one `XREADGROUP … COUNT n` for the n of them waiting;
 *   a held job's idle time is reset every `leaseMs / 3`; jobs idle longer than
 *   `leaseMs` are taken over with `XAUTOCLAIM`, and at once when their worker's
 *   heartbeats stop (see {@link Membership}).
 * - The FINISH script stores the results, acknowledges and deletes the entries, and
 *   appends one ledger entry and one service-time update for the call; `complete()`
 *   resolves once that is replicated, and then the producer is told, its result in the
 *   notice when small. With one shard the same call claims the finishing consumers'
 *   next entries (prefetch), so a busy consumer makes no read of its own.
 * - With `connection: { sentinels, name }`, ioredis asks Sentinel for the primary and
 *   follows it when Sentinel promotes a replica.
 */
export class RedisQueue implements JobQueue {
  readonly kind = 'redis' as const;
  /** This process's member id (heartbeats, consumer names). */
  readonly member: string;
  readonly #options: ResolvedQueueOptions;
  readonly #shards: Shard[];
  readonly #client: Redis;
  readonly #clustered: boolean;
  /** Tenants to shards (more than one shard only). */
  readonly #partitioner: RendezvousPartitioner | undefined;
  /** Shard of each job this handle enqueued or found lately (job id → shard index). */
  readonly #shardOfJob = new Map<string, number>();
  readonly #inboxKey: string;
  readonly #prefix: string;
  /** Heartbeats, renewals and reclaims: never behind a `WAIT` on the main connection. */
  readonly #control: Redis;
  readonly #group: string;
  readonly #minReplicas: number;
  readonly #replicationTimeoutMs: number;
  readonly #pollMs: number;
  readonly #stats: QueueStats = emptyStats();
  readonly #waiters = new Map<string, { since: number; done: Set<(result: JobResult) => void> }>();
  readonly #consumers = new Set<RedisConsumer>();
  /** Notices to send in this tick, by producer. */
  readonly #notices = new Map<string, Buffer[]>();
  /** When each inbox's expiry was last pushed back (performance.now()). */
  readonly #inboxTouched = new Map<string, number>();
  /** Attended jobs this handle enqueued whose notice has not come yet. */
  readonly #ownAttended = new Set<string>();
  /** Notices that came before anyone waited (job id → arrival), kept a minute. */
  readonly #noticed = new Map<string, number>();
  readonly #membership: Membership | undefined;
  readonly #heartbeatIntervalMs: number;
  #inbox: Redis | undefined;
  /** New entries for this handle's consumers (made by the first consumer). */
  #feed: EntryFeed | undefined;
  #pollTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** Cancels the pending reconnects of this handle's connections (see {@link reconnectWhenEnded}). */
  readonly #reconnects = new Set<() => void>();
  /** Bumped when a member is found gone: consumers scan for reclaimable jobs at once. */
  reclaimHint = 0;

  constructor(options: RedisQueueOptions = {}) {
    this.#options = resolveQueueOptions(options);
    const prefix = options.prefix ?? 'ballast:';
    this.#prefix = prefix;
    this.#group = nonEmptyString('group', options.group ?? 'workers');
    this.#minReplicas = integer('minReplicas', options.minReplicas ?? 1, { min: 0 });
    this.#replicationTimeoutMs = durationMs('replicationTimeoutMs', options.replicationTimeoutMs ?? 2000, { min: 1 });
    this.#pollMs = durationMs('pollMs', options.pollMs ?? 1000, { min: 10 });
    this.member = nonEmptyString('member', options.member ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`);
    if (/[@\s]/.test(this.member)) throw new InvalidOptionError('member', "a name without '@' or white space", this.member);
    this.#heartbeatIntervalMs = durationMs('heartbeatIntervalMs', options.heartbeatIntervalMs ?? 250, { min: 10 });
    const pauseMs = durationMs('heartbeatPauseMs', options.heartbeatPauseMs ?? 1000, { min: 0 });
    const connection = options.connection ?? 'redis://127.0.0.1:6379';
    const shardCount = options.cluster ? integer('cluster.shards', options.cluster.shards ?? 4, { min: 1, max: 1024 }) : 1;
    const base: RedisOptions = {
      lazyConnect: false,
      maxRetriesPerRequest: 20,
      failoverDetector: true,
      // A primary demoted under us (Sentinel turned it into a replica after a partition
      // or a pause): reconnect, which asks Sentinel again, and resend.
      reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 2 : false),
    };
    let cluster: Cluster | undefined;
    let client: Redis;
    if (options.cluster) {
      cluster = new Cluster(options.cluster.nodes, {
        scaleReads: 'master',
        ...options.cluster.options,
        redisOptions: { maxRetriesPerRequest: 20, ...options.cluster.options?.redisOptions },
      });
      cluster.on('+node', (node: Redis) => {
        node.on('connect', () => connectsOf.set(node, (connectsOf.get(node) ?? 0) + 1));
      });
      // Cluster and Redis share the command API; the queue uses only that part.
      client = cluster as unknown as Redis;
    } else {
      client = typeof connection === 'string' ? new Redis(connection, base) : new Redis({ ...base, ...connection });
    }
    // Errors surface through the commands that fail; without a listener ioredis would print them.
    client.on('error', () => {});
    if (!cluster) quietFailoverDetector(client);
    if (!cluster) this.#reconnects.add(reconnectWhenEnded(client, () => !this.#closed));
    this.#client = client;
    this.#clustered = cluster !== undefined;
    const common: FinishCommon = {
      maxDepth: this.#options.maxDepth,
      group: this.#group,
      resultTtlMs: this.#options.resultTtlMs,
      halfLifeMs: this.#options.serviceHalfLifeMs,
      retentionMs: this.#options.ledgerRetentionMs,
    };
    this.#shards = Array.from(
      { length: shardCount },
      (_, i) =>
        new Shard(
          i,
          client,
          cluster,
          cluster ? `${prefix}{${shardTag(i, shardCount)}}:` : prefix,
          this.#minReplicas,
          this.#replicationTimeoutMs,
          common,
          () => (shardCount === 1 ? this.#feed : undefined),
        ),
    );
    if (shardCount > 1) {
      this.#partitioner = new RendezvousPartitioner();
      for (let i = 0; i < shardCount; i++) this.#partitioner.add(String(i));
    }
    this.#inboxKey = this.#inboxOf(this.member);
    this.#control = this._duplicate(20);
    if (options.heartbeats !== false) {
      this.#membership = new Membership({
        member: this.member,
        channel: `${prefix}members`,
        intervalMs: this.#heartbeatIntervalMs,
        pauseMs,
        publisher: this.#control,
        subscriber: () => this._duplicate(null),
        onGone: (member) => {
          this.#abandon(member).catch(() => {});
        },
      });
    }
  }

  /**
   * @internal A fresh connection with the same settings, reconnected after a failover
   * ended it for as long as `isOpen()` (by default: until this handle closes).
   */
  _duplicate(maxRetriesPerRequest: number | null = null, isOpen: () => boolean = () => !this.#closed): Redis {
    if (this.#clustered) {
      const node = (this.#client as unknown as Cluster).duplicate() as unknown as Redis;
      node.on('error', () => {});
      return node;
    }
    const client = this.#client.duplicate({ maxRetriesPerRequest });
    client.on('error', () => {});
    quietFailoverDetector(client);
    this.#reconnects.add(reconnectWhenEnded(client, () => !this.#closed && isOpen()));
    return client;
  }

  /** @internal The shards, for consumers. */
  get shardCount(): number {
    return this.#shards.length;
  }

  #shardFor(tenant: string): Shard {
    return this.#shards[this.#partitioner ? Number(this.#partitioner.owner(tenant)) : 0] as Shard;
  }

  /** The shard that holds `id`: known for jobs enqueued here, else asked of every shard. */
  async #shardOf(id: string): Promise<Shard | undefined> {
    if (this.#shards.length === 1) return this.#shards[0];
    const known = this.#shardOfJob.get(id);
    if (known !== undefined) return this.#shards[known];
    const found = await Promise.all(this.#shards.map((shard) => this.#client.exists(shard.jobKey(id))));
    const index = found.indexOf(1);
    if (index < 0) return undefined;
    this.#remember(id, index);
    return this.#shards[index];
  }

  #remember(id: string, shard: number): void {
    if (this.#shards.length === 1) return;
    this.#shardOfJob.set(id, shard);
    if (this.#shardOfJob.size > 100_000) {
      for (const old of this.#shardOfJob.keys()) {
        this.#shardOfJob.delete(old);
        if (this.#shardOfJob.size <= 90_000) break;
      }
    }
  }

  /**
   * @internal FINISH calls of this handle that also claimed its consumers' next entries
   * (prefetch): Redis counts each as an `XREADGROUP` run inside a script.
   */
  get _prefetchReads(): number {
    return this.#shards.reduce((n, shard) => n + shard.claims, 0);
  }

  get leaseMs(): number {
    return this.#options.leaseMs;
  }

  /** @internal How long a consumer blocks on one read, ms: short enough to pick up reclaimable jobs soon. */
  get blockMs(): number {
    return Math.max(10, Math.min(500, Math.floor(this.#options.leaseMs / 2), 2 * this.#heartbeatIntervalMs));
  }

  async enqueue(input: JobInput): Promise<string> {
    if (this.#closed) throw new QueueClosedError();
    const id = input.id ?? randomUUID();
    const now = this.#options.now();
    const resultTtlMs =
      input.resultTtlMs === undefined ? this.#options.resultTtlMs : durationMs('resultTtlMs', input.resultTtlMs, { min: 1 });
    const deadlineAt = finiteNumber('deadlineAt', input.deadlineAt);
    const ttl = Math.ceil(Math.max(0, deadlineAt - now) + resultTtlMs);
    const tenant = tenantOf(input.params) ?? '';
    if (input.attended) this.#membership?.announce();
    const shard = this.#shardFor(tenant);
    this.#remember(id, shard.index);
    const producer = input.attended ? this.member : '';
    const header = `{"id":${JSON.stringify(id)},"deadlineAt":${deadlineAt},"enqueuedAt":${now},"p":${JSON.stringify(producer)},"params":${JSON.stringify(input.params)}}`;
    const args = [header, asBuffer(input.data), ttl, `\n${Math.ceil(resultTtlMs)}\n${tenant}`];
    let outcome: unknown;
    let added = false;
    try {
      await this.ensureGroup(shard.index);
      await this.#durably(shard, 'enqueue', async () => {
        const written = await shard.enqueues.submit({ key: shard.jobKey(id), args });
        outcome = String(written.value);
        added ||= isEntryId(outcome);
        return { acked: written.acked };
      });
    } catch (error) {
      // Refused to the client: a job added here must not run anyway. Best effort: on a
      // primary that is gone, the job is gone with it unless a replica had it.
      if (isEntryId(outcome)) await shard.script(UNDO, [shard.stream, shard.jobKey(id)], [outcome, this.#group]).catch(() => {});
      throw this.#unavailable(error);
    }
    if (outcome === '0') {
      this.#stats.rejectedFull++;
      throw new QueueFullError(this.#options.maxDepth);
    }
    if (added) this.#stats.enqueued++;
    if (input.attended) this.#ownAttended.add(id);
    return id;
  }

  async wait(id: string, signal?: AbortSignal): Promise<JobResult> {
    if (signal?.aborted) throw abortReason(signal);
    this.#readInbox();
    return new Promise<JobResult>((resolve, reject) => {
      let waiter = this.#waiters.get(id);
      if (!waiter) this.#waiters.set(id, (waiter = { since: performance.now(), done: new Set() }));
      const set = waiter.done;
      const cleanup = (): void => {
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(id)?.done === set) this.#waiters.delete(id);
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
      // Our own attended job: its notice will come (or came already). Otherwise, registered
      // first, then checked: a completion between the two is not missed.
      if (this.#ownAttended.has(id) && !this.#noticed.has(id)) return;
      this.#noticed.delete(id);
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
    let value: Buffer | null;
    try {
      const shard = await this.#shardOf(id);
      if (!shard) return undefined;
      value = await this.#client.getBuffer(shard.jobKey(id));
    } catch (error) {
      throw this.#unavailable(error);
    }
    return parseState(id, value);
  }

  async cancel(id: string): Promise<boolean> {
    let stored: boolean;
    try {
      const shard = await this.#shardOf(id);
      stored = shard ? await this.#finish(shard, '', id, { state: 'cancelled', attempt: 0 }) : false;
    } catch (error) {
      throw this.#unavailable(error);
    }
    if (stored) this.#stats.cancelled++;
    return stored;
  }

  consumer(name: string): Consumer {
    if (this.#closed) throw new QueueClosedError();
    nonEmptyString('name', name);
    this.#feed ??= new EntryFeed(this, `q@${this.member}`);
    const consumer = new RedisConsumer(this, name, this.#feed);
    this.#consumers.add(consumer);
    this.#membership?.watch().catch(() => {});
    return consumer;
  }

  async depth(): Promise<number> {
    try {
      const depths = await Promise.all(this.#shards.map((shard) => this.#client.xlen(shard.stream)));
      return depths.reduce((a, b) => a + b, 0);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  /** The oldest job waiting in any shard: in each, the first entry after the group's last delivered one, its id its Redis time of arrival. */
  async oldestWaitingAgeMs(): Promise<number> {
    try {
      await this.ensureGroup();
      const ages = await Promise.all(this.#shards.map((shard) => this.#oldestWaitingAge(shard)));
      return Math.max(0, ...ages);
    } catch (error) {
      throw this.#unavailable(error);
    }
  }

  async #oldestWaitingAge({ client, stream }: Shard): Promise<number> {
    const groups = (await client.call('XINFO', 'GROUPS', stream)) as unknown[][];
    const group = groups.find((g) => g[g.indexOf('name') + 1] === this.#group);
    const last = group ? String(group[group.indexOf('last-delivered-id') + 1]) : '0-0';
    const [entries, time] = await Promise.all([client.xrange(stream, `(${last}`, '+', 'COUNT', 1), client.time()]);
    const first = entries[0]?.[0];
    if (first === undefined) return 0;
    const nowMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    return Math.max(0, nowMs - Number(first.split('-')[0]));
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

  /** The members this handle hears (heartbeats) and those it found gone. */
  membership(): MembershipSnapshot {
    return this.#membership?.snapshot() ?? { member: this.member, watching: false, alive: [], gone: [] };
  }

  /** `WAIT` commands sent so far (one per group of concurrent writes). */
  get waitsSent(): number {
    return this.#shards.reduce((n, shard) => n + shard.group.sent, 0);
  }

  async *ledger(fromMs: number, toMs: number, options?: LedgerReadOptions): AsyncIterableIterator<LedgerEntry> {
    const count = ledgerArgs(fromMs, toMs, options);
    if (toMs <= fromMs) return;
    // One cursor per shard, merged oldest first.
    const heads = this.#shards.map((shard) => this.#ledgerOf(shard, fromMs, toMs, count));
    const current: Array<IteratorResult<LedgerEntry>> = await Promise.all(heads.map((h) => h.next()));
    while (true) {
      let best = -1;
      for (let i = 0; i < current.length; i++) {
        const r = current[i] as IteratorResult<LedgerEntry>;
        if (!r.done && (best < 0 || r.value.finishedAt < (current[best] as IteratorYieldResult<LedgerEntry>).value.finishedAt)) best = i;
      }
      if (best < 0) return;
      yield (current[best] as IteratorYieldResult<LedgerEntry>).value;
      current[best] = await (heads[best] as AsyncIterator<LedgerEntry>).next();
    }
  }

  async *#ledgerOf(shard: Shard, fromMs: number, toMs: number, count: number): AsyncIterableIterator<LedgerEntry> {
    let start = String(fromMs);
    while (true) {
      let batch: Array<[string, string[]]>;
      try {
        batch = (await this.#client.xrange(shard.ledger, start, String(toMs - 1), 'COUNT', count)) as Array<[string, string[]]>;
      } catch (error) {
        throw this.#unavailable(error);
      }
      for (const [entryId, fields] of batch) yield* parseLedgerEntry(entryId, fields);
      if (batch.length < count) return;
      start = `(${(batch[batch.length - 1] as [string, string[]])[0]}`;
    }
  }

  async serviceStats(): Promise<ServiceStats> {
    let parts: Array<Record<string, string>>;
    try {
      parts = await Promise.all(this.#shards.map((shard) => this.#client.hgetall(shard.service)));
    } catch (error) {
      throw this.#unavailable(error);
    }
    return serviceStatsOf(parts.map(parseService), this.#options.serviceHalfLifeMs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#pollTimer) clearInterval(this.#pollTimer);
    await Promise.all([...this.#consumers].map((c) => c.close()));
    await this.#feed?.close();
    await this.#membership?.close();
    this.#inbox?.disconnect();
    this.#control.disconnect();
    this.#client.disconnect();
    for (const cancel of this.#reconnects) cancel();
    this.#reconnects.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // --- used by RedisConsumer ------------------------------------------------------

  readonly #groups = new Map<number, Promise<void>>();

  /** @internal Creates the consumer group (and stream) of every shard, or of one, once (again when `force`: Redis said NOGROUP). */
  ensureGroup(index?: number, force = false): Promise<void> {
    if (index === undefined) return Promise.all(this.#shards.map((shard) => this.ensureGroup(shard.index))).then(() => undefined);
    if (force) this.#groups.delete(index);
    let created = this.#groups.get(index);
    if (!created) {
      const shard = this.#shards[index] as Shard;
      created = this.#client.call('XGROUP', 'CREATE', shard.stream, this.#group, '0', 'MKSTREAM').then(
        () => undefined,
        (error: Error) => {
          if (String(error.message).includes('BUSYGROUP')) return;
          this.#groups.delete(index);
          throw error;
        },
      );
      this.#groups.set(index, created);
    }
    return created;
  }

  /** @internal */
  /** @internal A consumer closed; when it was the last, the entries prefetched for it go back at once. */
  async _forget(consumer: RedisConsumer): Promise<void> {
    this.#consumers.delete(consumer);
    if (this.#consumers.size === 0) await this.#feed?.giveBackReady();
  }

  /**
   * @internal Reads up to `count` new entries of shard `index` for `consumer`: blocking up
   * to `blockMs` on `client` (the feed's own connection), or at once on the shared one
   * when `client` is undefined.
   */
  async _read(client: Redis | undefined, consumer: string, index: number, count: number, blockMs?: number): Promise<RawEntry[]> {
    const shard = this.#shards[index] as Shard;
    const block = blockMs === undefined ? [] : ['BLOCK', blockMs];
    await this.ensureGroup(index);
    const reply = (await (client ?? this.#client).callBuffer(
      'XREADGROUP',
      'GROUP',
      this.#group,
      consumer,
      'COUNT',
      count,
      ...block,
      'STREAMS',
      shard.stream,
      '>',
    )) as Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
    return (reply?.[0]?.[1] ?? []).map((entry) => parseEntry(entry, 1, index));
  }

  /**
   * @internal Takes over up to `max` entries idle longer than `leaseMs` (their consumer
   * died, or was found gone and its entries marked). `XAUTOCLAIM` looks at no more than
   * ten pending entries per entry asked for, so the scan follows its cursor through the
   * whole pending list. The delivery count Redis keeps for an entry is its attempt number.
   */
  async _reclaim(consumer: string, max: number): Promise<RawEntry[]> {
    if (this.#shards.length === 1) return this.#reclaimFrom(this.#shards[0] as Shard, consumer, max);
    const release = (late: RawEntry[]): Promise<unknown> =>
      Promise.all(late.map((e) => this._release(consumer, e.shard, e.entryId, e.job.attempt)));
    for (const shard of this.#shards) {
      if (!this.#usable(shard.index)) continue;
      const entries = await this.#within(shard.index, this.#reclaimFrom(shard, consumer, max), release);
      if (entries.length > 0) return entries;
    }
    return [];
  }

  readonly #slowUntil = new Map<number, number>();

  /** False while shard `index` is skipped by reclaim scans: it did not answer in time lately (failing over, hung). */
  #usable(index: number): boolean {
    return (this.#slowUntil.get(index) ?? 0) <= performance.now();
  }

  /**
   * Waits at most 250 ms for `read` from shard `index`: a shard that does not answer by
   * then is skipped for a second, so one shard's failover does not stall the reclaim
   * scan of the others; entries it hands over late are given to `late` (to hand them back).
   */
  async #within(index: number, read: Promise<RawEntry[]>, late: (entries: RawEntry[]) => Promise<unknown>): Promise<RawEntry[]> {
    const allowMs = 250;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const slow = new Promise<'slow'>((resolve) => {
      timer = setTimeout(() => resolve('slow'), allowMs);
      timer.unref();
    });
    const outcome = await Promise.race([read.catch(() => 'slow' as const), slow]);
    clearTimeout(timer);
    if (outcome !== 'slow') return outcome;
    this.#slowUntil.set(index, performance.now() + 1000);
    read.then(
      (entries) => entries.length > 0 && late(entries).catch(() => undefined),
      () => undefined,
    );
    return [];
  }

  async #reclaimFrom(shard: Shard, consumer: string, max: number): Promise<RawEntry[]> {
    const { stream } = shard;
    const out: RawEntry[] = [];
    let cursor = '0-0';
    do {
      const reply = (await this.#control.callBuffer(
        'XAUTOCLAIM',
        stream,
        this.#group,
        consumer,
        this.#options.leaseMs,
        cursor,
        'COUNT',
        max - out.length,
      )) as [Buffer, Array<[Buffer, Buffer[]] | null>] | null;
      for (const entry of reply?.[1] ?? []) {
        if (!entry) continue;
        this.#stats.reclaimed++;
        const entryId = entry[0].toString();
        const pending = (await this.#control.call('XPENDING', stream, this.#group, entryId, entryId, 1)) as Array<
          [string, string, number, number]
        >;
        out.push(parseEntry(entry, Number(pending[0]?.[3] ?? 2), shard.index));
      }
      cursor = reply?.[0]?.toString() ?? '0-0';
    } while (cursor !== '0-0' && out.length < max);
    return out;
  }

  /** @internal Hands an unfinished delivery back: reclaimable at once, and not counted as an attempt. */
  async _release(consumer: string, index: number, entryId: string, attempt: number): Promise<void> {
    await this.#control.call(
      'XCLAIM',
      (this.#shards[index] as Shard).stream,
      this.#group,
      consumer,
      0,
      entryId,
      'IDLE',
      this.#options.leaseMs * 10,
      'RETRYCOUNT',
      Math.max(0, attempt - 1),
      'JUSTID',
    );
  }

  /** @internal Resets the idle time of held entries: renews their leases. */
  async _renew(consumer: string, index: number, entryIds: string[]): Promise<void> {
    if (entryIds.length === 0) return;
    await this.#control.call('XCLAIM', (this.#shards[index] as Shard).stream, this.#group, consumer, 0, ...entryIds, 'IDLE', 0, 'JUSTID');
  }

  /**
   * @internal Decides what to do with a received entry: a lease to run, or undefined
   * when it was expired, orphaned or poisoned (and is now finished and acknowledged).
   * Decided here, without a round trip: cancelled jobs are deleted from the stream and
   * never received, and the attempt is Redis's delivery count.
   */
  async _begin(consumer: RedisConsumer, entry: RawEntry): Promise<Lease | undefined> {
    const { job, entryId, producer, shard } = entry;
    const base = { worker: consumer.name, attempt: job.attempt, tenant: tenantOf(job.params) };
    if (job.attempt > this.#options.maxAttempts) {
      const failure = poison(job.id, this.#options.maxAttempts);
      await this._finish(shard, entryId, job.id, {
        ...base,
        state: 'failed',
        info: JSON.stringify(failure),
        errorCode: failure.code,
        producer,
      });
      return undefined;
    }
    if (this.#options.now() > job.deadlineAt) {
      await this._finish(shard, entryId, job.id, { ...base, state: 'expired', producer });
      return undefined;
    }
    if (producer !== '' && this.#membership?.isGone(producer)) {
      await this._finish(shard, entryId, job.id, { ...base, state: 'cancelled', reason: 'orphaned' });
      return undefined;
    }
    return consumer._lease(entry, base.tenant);
  }

  /**
   * @internal Stores a final state with its ledger entry, acknowledges, waits for
   * replication. True when this call stored it (false: a final state was there already).
   */
  async _finish(index: number, entryId: string, id: string, finish: Finish): Promise<boolean> {
    const stored = await this.#finish(this.#shards[index] as Shard, entryId, id, finish);
    if (stored) {
      if (finish.state === 'done') this.#stats.completed++;
      else if (finish.state === 'failed') this.#stats.failed++;
      else if (finish.state === 'expired') this.#stats.expired++;
      else if (finish.reason === 'orphaned') this.#stats.orphaned++;
    }
    return stored;
  }

  async #finish(shard: Shard, entryId: string, id: string, f: Finish): Promise<boolean> {
    const value = finalValue(f.state, f.info ?? '{}', f.data ? asBuffer(f.data) : undefined);
    const record = ledgerRecord({
      id,
      outcome: f.state,
      attempt: f.attempt,
      tenant: f.tenant,
      worker: f.worker,
      usage: f.usage,
      errorCode: f.errorCode,
      reason: f.reason,
    });
    const args = [entryId, value, record, f.serviceMs === undefined ? '' : Math.round(f.serviceMs * 1000) / 1000];
    // A producer in another process is notified by the script itself (one primary; on
    // Redis Cluster its inbox is in another slot), and confirms the notice with a WAIT of
    // its own; this handle's own producers, and those on a cluster, are told here once the
    // result is replicated.
    const inScript = f.producer !== undefined && f.producer !== '' && f.producer !== this.member && !this.#clustered;
    const notify = inScript ? { inbox: this.#inboxOf(f.producer as string), head: `${Buffer.byteLength(id)}:${id}` } : undefined;
    let stored = false;
    await this.#durably(shard, 'result', async () => {
      // A consumer's finish (not a cancel's): the consumer asks for its next job next.
      const item: FinishItem = { key: shard.jobKey(id), args, prefetch: entryId !== '', ...(notify ? { notify } : {}) };
      const written = await shard.finishes.submit(item);
      stored ||= written.value === 1;
      return { acked: written.acked };
    });
    if (stored && f.producer && !inScript) this.#notify(f.producer, id, value);
    return stored;
  }

  /** The inbox list of `member`: notices of its jobs' results (on Redis Cluster, in a slot of its own). */
  #inboxOf(member: string): string {
    return this.#clustered ? `${this.#prefix}inbox:{${member}}` : `${this.#prefix}inbox:${member}`;
  }

  /**
   * Tells producers of replicated results when the FINISH script did not (on Redis
   * Cluster): one RPUSH per producer for every notice of the same tick, each carrying the
   * result when it is at most {@link NOTICE_RESULT_MAX_BYTES} (the producer then needs no
   * second read). A producer that is this handle is told directly.
   */
  #notify(producer: string, id: string, value: Buffer): void {
    const notice = noticeOf(id, value.length <= NOTICE_RESULT_MAX_BYTES ? value : undefined);
    if (producer === this.member) {
      this.#noticeArrived(notice);
      return;
    }
    const pending = this.#notices.get(producer);
    if (pending) {
      pending.push(notice);
      return;
    }
    this.#notices.set(producer, [notice]);
    if (this.#notices.size > 1) return;
    // After this turn of the event loop: the notices of every batch replicated in it go together.
    setImmediate(() => {
      for (const [member, notices] of this.#notices) {
        const inbox = this.#inboxOf(member);
        this.#client.rpush(inbox, ...notices).catch(() => {});
        if (renewalDue(this.#inboxTouched, inbox)) this.#client.expire(inbox, 70).catch(() => {});
      }
      this.#notices.clear();
    });
  }

  /**
   * Runs `write`, then `WAIT`s for `minReplicas` (the `WAIT` sent behind the write, or
   * asked for now, shared with every write of the same tick). `WAIT` speaks for the
   * writes of its own connection only: when ioredis reconnects in between (a failover) it resends the pending `WAIT` to the new
   * primary, where it would vouch for a write that may never have reached that server.
   * So a reconnect during the two means: write again (every write here is idempotent)
   * and wait again, on the new connection.
   */
  async #durably(shard: Shard, what: string, write: () => Promise<{ acked: Promise<number> | undefined }>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const epoch = shard.epoch();
      const written = await write();
      if (this.#minReplicas > 0) {
        const acked = await (written.acked ?? shard.group.after());
        if (acked < this.#minReplicas) {
          throw new QueueUnavailableError(
            `${what} reached ${acked} of ${this.#minReplicas} required replicas within ${this.#replicationTimeoutMs} ms`,
          );
        }
      }
      if (epoch === shard.epoch()) return;
      if (attempt === 3) throw new QueueUnavailableError(`${what}: the connection to Redis kept changing while waiting for replicas`);
    }
  }

  /**
   * A member was found gone: its consumers' entries are marked idle beyond the lease,
   * so the next reclaim scan of any consumer takes them (ours at once). Entries renewed
   * in the last two heartbeat intervals are left alone: their consumer is alive.
   */
  async #abandon(member: string): Promise<void> {
    let marked = 0;
    for (const shard of this.#shards) marked += await this.#abandonIn(shard, member);
    if (marked > 0) this.reclaimHint++;
  }

  async #abandonIn(shard: Shard, member: string): Promise<number> {
    const { stream } = shard;
    const consumers = (await this.#control.call('XINFO', 'CONSUMERS', stream, this.#group)) as unknown[][];
    const suffix = `@${member}`;
    let marked = 0;
    for (const info of consumers) {
      const fields = flatRecord(info);
      const name = String(fields.name);
      if (!name.endsWith(suffix) || Number(fields.pending) === 0) continue;
      const pending = (await this.#control.call('XPENDING', stream, this.#group, '-', '+', 1000, name)) as Array<[string]>;
      const ids = pending.map((p) => p[0]);
      if (ids.length === 0) continue;
      const idle = 2 * this.#heartbeatIntervalMs;
      const claimed = (await this.#control.call(
        'XCLAIM',
        stream,
        this.#group,
        name,
        idle,
        ...ids,
        'IDLE',
        this.#options.leaseMs * 10,
        'JUSTID',
      )) as string[];
      marked += claimed.length;
    }
    return marked;
  }

  /**
   * Reads this handle's inbox: `BLMPOP`, and on one primary with replicas a `WAIT` right
   * behind it on the same connection. The FINISH script pushes a notice before its own
   * `WAIT` has answered, so a notice is believed only once the replicas hold everything up
   * to the pop: the pop is a write of this connection (also when served while blocked: it
   * moves the connection's replication offset, which is what `WAIT` waits for; the queue's
   * tests check this against the Redis they run), and the `WAIT` covers it. Both run in
   * Redis's same turn as the FINISH that served the pop, and its `WAIT` and ours share the
   * replicas' acknowledgement. Notices not confirmed (`WAIT` short, or the connection lost
   * in between: a failover) are dropped; their waiters' poll reads the results instead.
   */
  #readInbox(): void {
    if (this.#inbox || this.#closed) return;
    const inbox = this._duplicate(null);
    this.#inbox = inbox;
    const key = this.#inboxKey;
    const confirm = !this.#clustered && this.#minReplicas > 0;
    // Connections lost so far: one lost between the pop and the WAIT voids the WAIT (it
    // would be resent to whichever server the connection reaches next).
    let lost = 0;
    inbox.on('close', () => {
      lost++;
    });
    const loop = async (): Promise<void> => {
      while (!this.#closed) {
        const epoch = lost;
        let notices: Buffer[];
        let replicas = Number.POSITIVE_INFINITY;
        try {
          const popped = inbox.callBuffer('BLMPOP', 1, 1, key, 'LEFT', 'COUNT', 256) as Promise<[Buffer, Buffer[]] | null>;
          const acked = confirm ? inbox.call('WAIT', this.#minReplicas, this.#replicationTimeoutMs) : undefined;
          acked?.catch(() => {});
          notices = (await popped)?.[1] ?? [];
          if (acked) replicas = Number(await acked);
        } catch {
          if (this.#closed) return;
          await new Promise((r) => setTimeout(r, 100).unref());
          continue;
        }
        if (confirm && (replicas < this.#minReplicas || lost !== epoch)) continue;
        for (const notice of notices) this.#noticeArrived(notice);
      }
    };
    loop().catch(() => {});
  }

  #noticeArrived(notice: Buffer): void {
    let parsed: ReturnType<typeof parseNotice>;
    try {
      parsed = parseNotice(notice);
    } catch {
      return; // not a notice this version wrote: the poll finds the result
    }
    const { id, state } = parsed;
    this.#ownAttended.delete(id);
    const waiter = this.#waiters.get(id);
    if (waiter) {
      if (state && state.status !== 'pending') for (const done of [...waiter.done]) done(state);
      else this.#deliver(id);
      return;
    }
    const now = performance.now();
    this.#noticed.set(id, now);
    if (this.#noticed.size > 10_000) {
      for (const [old, at] of this.#noticed) {
        if (at > now - 60_000 && this.#noticed.size <= 10_000) break;
        this.#noticed.delete(old);
      }
    }
  }

  #deliver(id: string): void {
    this.result(id).then(
      (state) => {
        if (!state || state.status === 'pending') return;
        const waiter = this.#waiters.get(id);
        if (waiter) for (const done of [...waiter.done]) done(state);
      },
      () => {
        // Unreachable now; the poll tries again.
      },
    );
  }

  #updatePolling(): void {
    if (this.#waiters.size > 0 && !this.#pollTimer && !this.#closed) {
      this.#pollTimer = setInterval(() => {
        const before = performance.now() - this.#pollMs;
        for (const [id, waiter] of this.#waiters) if (waiter.since <= before) this.#deliver(id);
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
}

/**
 * True when `inbox`'s lifetime is due for renewal, and notes it renewed: every 10 s, so it
 * expires a minute or so after the last notice and a producer that died leaves nothing
 * behind. `renewed`: when each inbox was last renewed (performance.now()).
 */
function renewalDue(renewed: Map<string, number>, inbox: string): boolean {
  const now = performance.now();
  if ((renewed.get(inbox) ?? Number.NEGATIVE_INFINITY) >= now - 10_000) return false;
  if (renewed.size >= 10_000) renewed.clear();
  renewed.set(inbox, now);
  return true;
}

/** The job's tenant, when its params name one. */
function tenantOf(params: JobParams): string | undefined {
  return typeof params.tenant === 'string' ? params.tenant : undefined;
}

function isEntryId(value: unknown): value is string {
  return typeof value === 'string' && value.includes('-') && value !== '-1';
}

function parseEntry([rawId, fields]: [Buffer, Buffer[]], attempt: number, shard: number): RawEntry {
  let header: Buffer | undefined;
  let data: Buffer | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = (fields[i] as Buffer).toString();
    if (name === 'h') header = fields[i + 1];
    else if (name === 'd') data = fields[i + 1];
  }
  const h = JSON.parse(header?.toString() ?? '{}') as {
    id?: string;
    deadlineAt?: number;
    enqueuedAt?: number;
    p?: string;
    params?: JobParams;
  };
  return {
    entryId: rawId.toString(),
    shard,
    producer: h.p ?? '',
    job: {
      id: h.id ?? '',
      params: h.params ?? {},
      deadlineAt: Number(h.deadlineAt),
      enqueuedAt: Number(h.enqueuedAt),
      data: data ?? Buffer.alloc(0),
      attempt,
    },
  };
}

function flatRecord(values: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < values.length; i += 2) out[String(values[i])] = values[i + 1];
  return out;
}

/** @internal Reads one shard's service-time hash. */
export function parseService(fields: Record<string, string>): ServicePart {
  const recent = [];
  for (let i = 0; i < SERVICE_RING_SIZE; i++) {
    const raw = fields[`r${i}`];
    if (raw === undefined) continue;
    const [ms, at] = raw.split(':');
    recent.push({ ms: Number(ms), at: Number(at) });
  }
  recent.sort((a, b) => b.at - a.at);
  return {
    samples: Number(fields.n ?? 0),
    meanMs: Number(fields.mean ?? 0),
    weight: Number(fields.w ?? 0),
    updatedAt: Number(fields.at ?? 0),
    recent,
  };
}
