/**
 * Real Redis for tests: starts `redis-server` (and, on request, replicas and
 * Sentinels) on free loopback ports in a temporary directory, waits until each
 * answers, and stops them afterwards.
 *
 * No process outlives the test run: `stop()` ends them, an `exit` handler ends any
 * left running, and each server is watched by a tiny shell watchdog that kills it if
 * the test process dies without running its handlers (a crash, SIGKILL, a timeout).
 *
 * @example
 * ```ts
 * const redis = await startRedis();
 * afterAll(() => redis.stop());
 * const client = new Redis(redis.port, redis.host);
 * ```
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { onFreePort, superviseProcess, type TestServer, waitFor } from './process.ts';

/** One running `redis-server` or `redis-sentinel` process: `url` is `redis://host:port`, `dir` holds its data files and config. */
export interface RedisProcess extends TestServer {
  readonly role: 'primary' | 'replica' | 'sentinel';
  /** Kills the process at once with SIGKILL, as a crash would, and waits for it to exit. */
  crash(): Promise<void>;
  /** Stops the process gracefully (SIGTERM, then SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
  /** Starts the process again on the same port and directory (after `crash` or `stop`). */
  restart(): Promise<void>;
}

/** A standalone server. */
export interface RedisServer extends RedisProcess, AsyncDisposable {}

/**
 * How a data server persists what it acknowledged: the append-only file with the given
 * `appendfsync` policy, or `false` for nothing on disk.
 * - `always`: fsync before answering; a power cut loses nothing acknowledged.
 * - `everysec`: fsync once a second in the background; a killed process loses nothing
 *   (the file is written before each answer), a power cut up to about 2 s.
 * - `no`: the kernel flushes when it likes (about every 30 s on Linux).
 */
export type RedisPersistence = 'always' | 'everysec' | 'no' | false;

/** Options for {@link startRedis}. */
export interface StartRedisOptions {
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. */
  args?: string[];
  /** Append-only file and its fsync policy, or `false` for no persistence. @default 'everysec' */
  persistence?: RedisPersistence;
  /** Make this server a replica of another. */
  replicaOf?: { host: string; port: number };
  /** How long to wait for the server to answer. @default 10000 */
  startTimeoutMs?: number;
  /** Where it runs. @default { host: '127.0.0.1' } */
  placement?: Placement;
}

/** Options for {@link startRedisTopology}. */
export interface TopologyOptions {
  /** Number of replicas. @default 2 */
  replicas?: number;
  /** Number of Sentinels; 0 for plain replication. @default 3 */
  sentinels?: number;
  /** The name Sentinels monitor the primary under. @default 'ballast' */
  masterName?: string;
  /** Sentinel quorum. @default majority of `sentinels` */
  quorum?: number;
  /** Sentinel `down-after-milliseconds`. @default 1000 */
  downAfterMs?: number;
  /** Sentinel `failover-timeout`. @default 5000 */
  failoverTimeoutMs?: number;
  /** Extra arguments for every data server. */
  args?: string[];
  /** Persistence of every data server (see {@link RedisPersistence}). @default 'everysec' */
  persistence?: RedisPersistence;
  /**
   * `min-replicas-to-write` of every data server: a primary that hears from fewer
   * replicas (within `minReplicasMaxLagS`) refuses writes, so a primary cut off from its
   * replicas stops taking work. 0 disables it.
   * @default 1 when there are replicas, else 0
   */
  minReplicasToWrite?: number;
  /** `min-replicas-max-lag`, seconds. @default 5 */
  minReplicasMaxLagS?: number;
  /**
   * Where each process runs: the address it binds (default 127.0.0.1) and a command
   * prefix that starts it elsewhere, e.g. `['ip', 'netns', 'exec', 'ns1']` (see
   * `@ballast/test/netns`). Index counts within the role.
   */
  placement?: (role: RedisProcess['role'], index: number) => Placement;
}

/** Where one process runs (see {@link TopologyOptions.placement}). */
export interface Placement {
  host: string;
  /** Program and arguments the server's command line is appended to. */
  wrap?: string[];
}

/** A primary with replicas and (optionally) Sentinels watching it. */
export interface RedisTopology extends AsyncDisposable {
  readonly masterName: string;
  readonly primary: RedisProcess;
  readonly replicas: readonly RedisProcess[];
  readonly sentinels: readonly RedisProcess[];
  /** `[{ host, port }]` of every Sentinel, as ioredis's `sentinels` option takes it. */
  readonly sentinelAddresses: Array<{ host: string; port: number }>;
  /** Asks a Sentinel which server is primary now. */
  currentPrimary(): Promise<{ host: string; port: number }>;
  /** Every process (data servers and Sentinels). */
  readonly processes: readonly RedisProcess[];
  /**
   * A power cut: SIGKILL to every process at once, then each started again on its port
   * and directory, data servers from what they persisted. Resolves once all answer.
   */
  powerCut(): Promise<void>;
  /** Stops every process and removes their directories. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/** Thrown when `redis-server` or `redis-sentinel` is not installed. */
export class RedisNotInstalledError extends Error {
  constructor(binary: string) {
    super(
      `${binary} was not found on PATH. Ballast's tests run a real Redis. Install it with:\n` +
        '  sudo apt-get update && sudo apt-get install -y redis-server redis-sentinel   (Debian, Ubuntu)\n' +
        '  brew install redis                                                           (macOS)\n' +
        'On a Debian machine running as root, `npm test` installs them itself.',
    );
    this.name = 'RedisNotInstalledError';
  }
}

/** Path of `binary` on PATH, or throws {@link RedisNotInstalledError}. */
export function findBinary(binary: 'redis-server' | 'redis-sentinel'): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, binary);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  throw new RedisNotInstalledError(binary);
}

/** Starts a standalone `redis-server` on a free loopback port. */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ballast-redis-'));
  const proc = await startData(dir, options.replicaOf ? 'replica' : 'primary', options);
  const server = proc as ManagedProcess & RedisServer;
  const stop = server.stop.bind(server);
  server.stop = async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  };
  server[Symbol.asyncDispose] = server.stop;
  return server;
}

/** Starts a primary, `replicas` replicas and `sentinels` Sentinels, and waits until replication is up. */
export async function startRedisTopology(options: TopologyOptions = {}): Promise<RedisTopology> {
  const replicaCount = options.replicas ?? 2;
  const sentinelCount = options.sentinels ?? 3;
  const masterName = options.masterName ?? 'ballast';
  const quorum = options.quorum ?? Math.floor(sentinelCount / 2) + 1;
  const root = mkdtempSync(join(tmpdir(), 'ballast-redis-topology-'));
  const started: ManagedProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((p) => p.stop()));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const minReplicas = options.minReplicasToWrite ?? (replicaCount > 0 ? 1 : 0);
    const dataArgs = [
      '--min-replicas-to-write',
      String(minReplicas),
      '--min-replicas-max-lag',
      String(options.minReplicasMaxLagS ?? 5),
      ...(options.args ?? []),
    ];
    const persistence = options.persistence;
    const place = options.placement ?? (() => ({ host: HOST }));
    const primary = await startData(mkdir(root, 'primary'), 'primary', { args: dataArgs, persistence, placement: place('primary', 0) });
    started.push(primary);
    const replicas: ManagedProcess[] = [];
    for (let i = 0; i < replicaCount; i++) {
      const replica = await startData(mkdir(root, `replica-${i}`), 'replica', {
        args: dataArgs,
        persistence,
        replicaOf: { host: primary.host, port: primary.port },
        placement: place('replica', i),
      });
      started.push(replica);
      replicas.push(replica);
    }
    await waitFor(`${replicaCount} replicas in sync`, 15_000, async () => {
      const info = await command(primary.port, ['INFO', 'replication'], primary.host);
      const online = info.match(/state=online/g)?.length ?? 0;
      return online >= replicaCount;
    });
    const sentinels: ManagedProcess[] = [];
    for (let i = 0; i < sentinelCount; i++) {
      const dir = mkdir(root, `sentinel-${i}`);
      const sentinel = await startSentinel(dir, masterName, primary, quorum, options, place('sentinel', i));
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    if (sentinelCount > 0) {
      await waitFor('Sentinels to discover each other and the replicas', 15_000, async () => {
        const master = parseFlat(await command(sentinels[0]!.port, ['SENTINEL', 'MASTER', masterName], sentinels[0]!.host));
        return Number(master['num-other-sentinels']) >= sentinelCount - 1 && Number(master['num-slaves']) >= replicaCount;
      });
    }
    const topology: RedisTopology = {
      masterName,
      primary,
      replicas,
      sentinels,
      sentinelAddresses: sentinels.map((s) => ({ host: s.host, port: s.port })),
      async currentPrimary() {
        for (const s of sentinels) {
          if (!s.running) continue;
          const reply = await command(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName], s.host);
          const [host, port] = reply.split('\n');
          if (host && port) return { host, port: Number(port) };
        }
        throw new Error('no Sentinel is running');
      },
      processes: started,
      async powerCut() {
        for (const p of started) {
          try {
            if (p.running) process.kill(p.pid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }
        await Promise.all(started.map((p) => p.restart()));
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
    return topology;
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Sends one command over a fresh connection and returns the reply as text (arrays
 * joined by newlines). Enough for setup and health checks without a client library.
 */
export function command(port: number, args: string[], host = HOST, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let buffer = Buffer.alloc(0);
    const done = (error: Error | null, value?: string): void => {
      socket.destroy();
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(value ?? '');
    };
    const timer = setTimeout(() => done(new Error(`redis ${host}:${port} did not answer ${args[0]} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (error) => done(error));
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      const parsed = parseReply(buffer, 0);
      if (parsed === undefined) return;
      if (parsed.error) done(new Error(parsed.error));
      else done(null, parsed.value);
    });
    socket.connect(port, host, () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
  });
}

// ---------------------------------------------------------------------------

interface ManagedProcess extends RedisProcess {
  stop(): Promise<void>;
}

async function startData(dir: string, role: 'primary' | 'replica', options: StartRedisOptions): Promise<ManagedProcess> {
  const binary = findBinary('redis-server');
  const persistence = options.persistence ?? 'everysec';
  const placement = options.placement ?? { host: HOST };
  return launch(role, dir, options.startTimeoutMs ?? 10_000, placement, (port) => {
    // A config file, written once per port: Sentinel records role changes in it (CONFIG
    // REWRITE), so a server restarted after a failover comes back in the role it had.
    const config = join(dir, 'redis.conf');
    const lines = [
      `port ${port}`,
      `bind ${placement.host}`,
      `dir ${dir}`,
      'daemonize no',
      'protected-mode no',
      `logfile ${join(dir, 'redis.log')}`,
      'save ""',
      persistence === false ? 'appendonly no' : 'appendonly yes',
      ...(persistence === false ? [] : [`appendfsync ${persistence}`]),
    ];
    if (options.replicaOf) lines.push(`replicaof ${options.replicaOf.host} ${options.replicaOf.port}`);
    writeFileSync(config, `${lines.join('\n')}\n`);
    return { binary, args: [config, ...(options.args ?? [])] };
  });
}

async function startSentinel(
  dir: string,
  masterName: string,
  primary: { host: string; port: number },
  quorum: number,
  options: TopologyOptions,
  placement: Placement,
): Promise<ManagedProcess> {
  const binary = findBinary('redis-sentinel');
  return launch('sentinel', dir, 10_000, placement, (port) => {
    const config = join(dir, 'sentinel.conf');
    // Written once per port: Sentinel rewrites the file as it learns the topology,
    // and a restart resumes from what it learned.
    writeFileSync(
      config,
      [
        `port ${port}`,
        `bind ${placement.host}`,
        'daemonize no',
        'protected-mode no',
        `dir ${dir}`,
        `logfile ${join(dir, 'sentinel.log')}`,
        `sentinel monitor ${masterName} ${primary.host} ${primary.port} ${quorum}`,
        `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${masterName} ${options.failoverTimeoutMs ?? 5000}`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'),
    );
    return { binary, args: [config] };
  });
}

function launch(
  role: RedisProcess['role'],
  dir: string,
  startTimeoutMs: number,
  placement: Placement,
  build: (port: number) => { binary: string; args: string[] },
): Promise<ManagedProcess> {
  return onFreePort(HOST, async (port) => manage(role, dir, port, startTimeoutMs, placement, build(port)), isNotInstalled);
}

const isNotInstalled = (error: unknown): boolean => error instanceof RedisNotInstalledError;

async function manage(
  role: RedisProcess['role'],
  dir: string,
  port: number,
  startTimeoutMs: number,
  placement: Placement,
  built: { binary: string; args: string[] },
): Promise<ManagedProcess> {
  const [program, ...prefix] = placement.wrap ?? [];
  const binary = program ?? built.binary;
  const args = program ? [...prefix, built.binary, ...built.args] : built.args;
  const host = placement.host;
  const proc = superviseProcess({
    what: `${role} on ${host}:${port}`,
    spawn: () => spawn(binary, args, { stdio: 'ignore' }),
    ready: async () => (await command(port, ['PING'], host)) === 'PONG',
    startTimeoutMs,
    exitDetail: () => `; see ${dir}`,
  });
  const managed: ManagedProcess = {
    role,
    host,
    port,
    url: `redis://${host}:${port}`,
    dir,
    get pid() {
      return proc.pid;
    },
    get running() {
      return proc.running;
    },
    crash: () => proc.crash(),
    async stop() {
      proc.forget();
      await proc.stop('SIGTERM', 5000);
    },
    async restart() {
      await proc.crash();
      await proc.start();
    },
  };
  await proc.start();
  return managed;
}

function mkdir(root: string, name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

type Parsed = { value: string; error?: undefined; end: number } | { error: string; value?: undefined; end: number };

function parseReply(buffer: Buffer, offset: number): Parsed | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[offset] as number);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  switch (type) {
    case '+':
    case ':':
      return { value: line, end: lineEnd + 2 };
    case '-':
      return { error: line, end: lineEnd + 2 };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: '', end: lineEnd + 2 };
      const end = lineEnd + 2 + length;
      if (buffer.length < end + 2) return undefined;
      return { value: buffer.toString('utf8', lineEnd + 2, end), end: end + 2 };
    }
    case '*': {
      const count = Number(line);
      const items: string[] = [];
      let at = lineEnd + 2;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, at);
        if (item === undefined) return undefined;
        items.push(item.error ?? item.value);
        at = item.end;
      }
      return { value: items.join('\n'), end: at };
    }
    default:
      return { error: `unexpected reply type ${JSON.stringify(type)}`, end: buffer.length };
  }
}

function parseFlat(reply: string): Record<string, string> {
  const parts = reply.split('\n');
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length; i += 2) out[parts[i] as string] = parts[i + 1] as string;
  return out;
}
