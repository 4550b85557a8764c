/**
 * A real local Redis Cluster for tests: `primaries` primaries with `replicasPerPrimary`
 * replicas each, every node a `redis-server` on a free loopback port (started like
 * `startRedis`, with the same append-only persistence), joined as `redis-cli --cluster
 * create` joins them (CLUSTER MEET, the slots split evenly, CLUSTER REPLICATE) but with any
 * number of primaries, one included, and waited on until every node reports
 * `cluster_state:ok` and every replica is in sync.
 *
 * @example
 * ```ts
 * const cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1 });
 * const client = new Cluster(cluster.addresses);
 * await cluster.stop();
 * ```
 */
import { command, type RedisPersistence, type RedisServer, startRedis } from './redis.ts';

/** Options of {@link startRedisCluster}. */
export interface ClusterOptions {
  /** Primaries (slots are split evenly among them). @default 3 */
  primaries?: number;
  /** Replicas of each primary. @default 1 */
  replicasPerPrimary?: number;
  /** `cluster-node-timeout`: silence after which a primary is failed over, ms. @default 1000 */
  nodeTimeoutMs?: number;
  /** Persistence of every node. @default 'everysec' */
  persistence?: RedisPersistence;
}

/** A running Redis Cluster. */
export interface RedisCluster extends AsyncDisposable {
  readonly nodes: readonly RedisServer[];
  /** `{ host, port }` of every node, as ioredis's `Cluster` takes them. */
  readonly addresses: Array<{ host: string; port: number }>;
  /** The node serving `slot` as primary now. */
  primaryOf(slot: number): Promise<RedisServer>;
  /** Resolves once every running node reports `cluster_state:ok`. */
  healthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a Redis Cluster on free loopback ports. */
export async function startRedisCluster(options: ClusterOptions = {}): Promise<RedisCluster> {
  const primaries = options.primaries ?? 3;
  const replicas = options.replicasPerPrimary ?? 1;
  const nodes: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    const args = [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      String(options.nodeTimeoutMs ?? 1000),
    ];
    for (let i = 0; i < primaries * (1 + replicas); i++) nodes.push(await startRedis({ args, persistence: options.persistence }));
    await join(nodes, primaries);
    /** Every primary has its replicas attached and in sync. */
    const replicated = async (): Promise<boolean> => {
      const infos = await Promise.all(
        nodes.filter((n) => n.running).map((n) => command(n.port, ['INFO', 'replication'], n.host).catch(() => '')),
      );
      const masters = infos.filter((i) => i.includes('role:master'));
      return masters.length >= primaries && masters.every((i) => (i.match(/state=online/g)?.length ?? 0) >= replicas);
    };
    const cluster: RedisCluster = {
      nodes,
      addresses: nodes.map((n) => ({ host: n.host, port: n.port })),
      async primaryOf(slot) {
        for (const node of nodes) {
          if (!node.running) continue;
          const lines = (await command(node.port, ['CLUSTER', 'NODES'], node.host)).split('\n');
          for (const line of lines) {
            const [, address, flags, , , , , state, ...ranges] = line.split(' ');
            if (!flags?.includes('master') || flags.includes('fail') || state !== 'connected') continue;
            const owns = ranges.some((r) => {
              const [from, to] = r.split('-').map(Number);
              return slot >= (from as number) && slot <= (to ?? (from as number));
            });
            const port = Number(address?.split('@')[0]?.split(':')[1]);
            const found = nodes.find((n) => n.port === port);
            if (owns && found) return found;
          }
        }
        throw new Error(`no primary serves slot ${slot}`);
      },
      async healthy(timeoutMs = 20_000) {
        const deadline = Date.now() + timeoutMs;
        while (true) {
          const states = await Promise.all(
            nodes.filter((n) => n.running).map((n) => command(n.port, ['CLUSTER', 'INFO'], n.host).catch(() => '')),
          );
          if (states.every((s) => s.includes('cluster_state:ok')) && (await replicated())) return;
          if (Date.now() > deadline) throw new Error(`the cluster did not report cluster_state:ok within ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
    await cluster.healthy();
    return cluster;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Joins fresh cluster nodes: the first `primaries` share the slots evenly, the rest replicate them in turn. */
async function join(nodes: readonly RedisServer[], primaries: number): Promise<void> {
  const first = nodes[0] as RedisServer;
  for (const node of nodes.slice(1)) await command(node.port, ['CLUSTER', 'MEET', first.host, String(first.port)], node.host);
  for (let i = 0; i < primaries; i++) {
    const node = nodes[i] as RedisServer;
    const from = Math.floor((i * 16384) / primaries);
    const to = Math.floor(((i + 1) * 16384) / primaries) - 1;
    await command(node.port, ['CLUSTER', 'ADDSLOTSRANGE', String(from), String(to)], node.host);
  }
  const ids = await Promise.all(nodes.slice(0, primaries).map((n) => command(n.port, ['CLUSTER', 'MYID'], n.host)));
  for (const [k, node] of nodes.slice(primaries).entries()) {
    const id = ids[k % primaries] as string;
    // A replica can follow a primary only once it has learnt of it through the gossip.
    const deadline = Date.now() + 15_000;
    while (true) {
      try {
        await command(node.port, ['CLUSTER', 'REPLICATE', id], node.host);
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}
