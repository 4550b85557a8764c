/**
 * The distributed deployment on one machine (`npm run start:distributed`): a Redis
 * primary, two replicas and three Sentinels, PostgreSQL, then every service of
 * {@link distributedServices} as its own supervised process on free loopback ports,
 * each checked healthy before the next group starts.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedisNetwork, type RedisNetwork } from '@ballast/app-queue/testing';
import { type PostgresServer, startPostgres } from '@ballast/test/postgres';
import { freePort } from '@ballast/test/process';
import { type RedisTopology, startRedisTopology } from '@ballast/test/redis';
import { ProcessGuard, type ServiceProcess, spawnService } from './processes.ts';
import { distributedServices, type ServiceSpec, type TopologyOptions } from './topology.ts';

/** Options of {@link launchDistributed}. */
export interface LaunchOptions extends Pick<TopologyOptions, 'apis' | 'workers' | 'workerConcurrency' | 'env'> {
  /** Restart a service that dies unasked, as a process manager would. @default true */
  restart?: boolean;
  /** Sentinel `down-after-milliseconds`. @default 1000 */
  downAfterMs?: number;
  /**
   * Run each Redis server (and the Sentinels) in a network namespace of its own, reached
   * over a bridge, so that a server's network can be cut (the chaos run's partition
   * fault). Needs Linux, root, `ip netns` and iptables. @default false
   */
  partitionable?: boolean;
  /** How long one service may take to start and pass its health check, ms. @default 120000 */
  startTimeoutMs?: number;
  /** Called as each part comes up (for progress lines). */
  onProgress?: (line: string) => void;
}

/** The running deployment. */
export interface LaunchedTopology {
  readonly redis: RedisTopology;
  /** The Redis servers' network, when launched `partitionable`. */
  readonly redisNetwork: RedisNetwork | undefined;
  readonly postgres: PostgresServer;
  readonly specs: readonly ServiceSpec[];
  readonly services: readonly ServiceProcess[];
  /** The gateway's public URL. */
  readonly url: string;
  /** The gateway's operational URL. */
  readonly ops: string;
  /** The management API's URL and admin token. */
  readonly identityUrl: string;
  readonly adminToken: string;
  /** `host:port,…` of the Sentinels. */
  readonly sentinels: string;
  readonly usageDatabaseUrl: string;
  /** Root of the workers' usage logs, and the services' log files (`logs/<name>.log`). */
  readonly dir: string;
  /** The service named `name`. @throws when there is none */
  service(name: string): ServiceProcess;
  /** What runs where: one line per process with its pid and addresses. */
  describe(): string;
  /** Stops every service (gateway first, management plane last), then PostgreSQL and Redis, and removes the directory. */
  close(): Promise<void>;
}

/** Starts the whole deployment; on any failure stops what it started and rethrows. */
export async function launchDistributed(options: LaunchOptions = {}): Promise<LaunchedTopology> {
  const progress = options.onProgress ?? (() => {});
  const guard = new ProcessGuard();
  const dir = mkdtempSync(join(tmpdir(), 'ballast-distributed-'));
  guard.removeOnDeath(dir);
  mkdirSync(join(dir, 'logs'));
  const started: ServiceProcess[] = [];
  let redis: RedisTopology | undefined;
  let network: RedisNetwork | undefined;
  let postgres: PostgresServer | undefined;
  const stopAll = async (): Promise<void> => {
    for (const kinds of [['gateway'], ['api'], ['worker', 'usage-shipper'], ['identity']]) {
      await Promise.all(started.filter((s) => kinds.includes(s.kind)).map((s) => s.stop(10_000)));
    }
    await postgres?.stop();
    await redis?.stop();
    await network?.net.close();
    guard.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (options.partitionable) network = await createRedisNetwork(2);
    redis = await startRedisTopology({
      replicas: 2,
      sentinels: 3,
      masterName: 'ballast',
      downAfterMs: options.downAfterMs ?? 1000,
      placement: network?.placement,
    });
    progress(`redis: primary ${redis.primary.url}, 2 replicas, 3 Sentinels`);
    postgres = await startPostgres({ settings: { max_connections: '200' } });
    const identityDatabaseUrl = await postgres.createDatabase('identity');
    const usageDatabaseUrl = await postgres.createDatabase('usage');
    progress(`postgres: ${postgres.url}`);
    const adminToken = randomBytes(24).toString('base64url');
    const sentinels = redis.sentinelAddresses.map((s) => `${s.host}:${s.port}`).join(',');
    const specs = await withFreePorts(3 + (options.workers ?? 2) + 2 * (options.apis ?? 3), (port) =>
      distributedServices(
        { sentinels, identityDatabaseUrl, usageDatabaseUrl, usageRoot: join(dir, 'usage'), adminToken },
        { ...options, port },
      ),
    );
    const start = async (spec: ServiceSpec): Promise<ServiceProcess> => {
      const service = await spawnService(spec.kind, spec.env, {
        name: spec.name,
        restart: options.restart ?? true,
        guard,
        logFile: join(dir, 'logs', `${spec.name}.log`),
        startTimeoutMs: options.startTimeoutMs ?? 120_000,
      });
      started.push(service);
      await healthy(spec, options.startTimeoutMs ?? 120_000);
      progress(`${spec.name}: pid ${service.pid}`);
      return service;
    };
    // In groups, each after what it depends on: identity; workers and shippers; API servers; gateway.
    for (const group of [['identity'], ['worker', 'usage-shipper'], ['api'], ['gateway']]) {
      await Promise.all(specs.filter((s) => group.includes(s.kind)).map(start));
    }
    const byName = (name: string): ServiceProcess => {
      const found = started.find((s) => s.name === name);
      if (!found) throw new Error(`no service named ${JSON.stringify(name)}`);
      return found;
    };
    const gateway = byName('gateway');
    const identity = byName('identity');
    const topology = redis;
    const pg = postgres;
    return {
      redis: topology,
      redisNetwork: network,
      postgres: pg,
      specs,
      services: started,
      url: String(gateway.info.url),
      ops: String(gateway.info.ops),
      identityUrl: String(identity.info.url),
      adminToken,
      sentinels,
      usageDatabaseUrl,
      dir,
      service: byName,
      describe: () => describe(topology, pg, specs, byName),
      close: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Runs `build` with a port allocator handing out free loopback ports (`count` asked of the kernel up front). */
async function withFreePorts(count: number, build: (port: TopologyOptions['port']) => ServiceSpec[]): Promise<ServiceSpec[]> {
  const pool: number[] = [];
  while (pool.length < count) {
    const p = await freePort();
    if (!pool.includes(p)) pool.push(p);
  }
  return build(() => {
    const p = pool.shift();
    if (p === undefined) throw new Error('ran out of free ports');
    return p;
  });
}

/** Polls the service's health endpoint until it answers 200 (a shipper has none: its start line is its health). */
async function healthy(spec: ServiceSpec, timeoutMs: number): Promise<void> {
  const url = healthUrl(spec);
  if (url === undefined) return;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${spec.name} did not become ready at ${url} within ${timeoutMs} ms (${last})`);
}

function healthUrl(spec: ServiceSpec): string | undefined {
  const host = spec.env.BALLAST_API_HOST ?? spec.env.BALLAST_GATEWAY_OPS_HOST ?? spec.env.BALLAST_IDENTITY_HOST ?? '127.0.0.1';
  if (spec.kind === 'identity') return `http://${host}:${spec.ports.public}/readyz`;
  if (spec.kind === 'usage-shipper') return undefined;
  return `http://${host}:${spec.ports.ops}/readyz`;
}

function describe(
  redis: RedisTopology,
  postgres: PostgresServer,
  specs: readonly ServiceSpec[],
  byName: (name: string) => ServiceProcess,
): string {
  const rows: string[][] = [];
  rows.push(['redis primary', String(redis.primary.pid), redis.primary.url]);
  for (const [i, r] of redis.replicas.entries()) rows.push([`redis replica ${i + 1}`, String(r.pid), r.url]);
  for (const [i, s] of redis.sentinels.entries()) rows.push([`sentinel ${i + 1}`, String(s.pid), s.url]);
  rows.push(['postgres', String(postgres.pid), postgres.url]);
  for (const spec of specs) {
    const host = spec.env.BALLAST_API_HOST ?? spec.env.BALLAST_GATEWAY_HOST ?? spec.env.BALLAST_IDENTITY_HOST ?? '127.0.0.1';
    const where = [
      spec.ports.public !== undefined && `http://${host}:${spec.ports.public}`,
      spec.ports.ops !== undefined && `ops http://${host}:${spec.ports.ops}`,
      spec.kind === 'usage-shipper' && `ships ${spec.env.BALLAST_USAGE_DIR}`,
    ].filter(Boolean);
    rows.push([spec.name, String(byName(spec.name).pid), where.join('   ')]);
  }
  const width = Math.max(...rows.map((r) => (r[0] as string).length));
  const pidWidth = Math.max(...rows.map((r) => (r[1] as string).length));
  return rows
    .map(([name, pid, where]) => `  ${(name as string).padEnd(width)}  pid ${(pid as string).padStart(pidWidth)}  ${where}`)
    .join('\n');
}
