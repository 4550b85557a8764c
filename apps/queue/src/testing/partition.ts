/**
 * Jepsen-style checks of the Redis queue against real failures, on a primary with two
 * replicas and three Sentinels, each data server in its own network namespace and the
 * Sentinels in another, the queue's clients in the test's own:
 *
 * - `partition`: the primary and the clients on one side, the replicas and Sentinels
 *   on the other (iptables drops every packet across), for longer than Sentinel takes to
 *   promote a replica; then healed, and the old primary rejoins as a replica.
 * - `pause`: the primary stopped (SIGSTOP) as long, then resumed (SIGCONT): for a moment
 *   it believes it is still the primary.
 *
 * Producers enqueue throughout and consumers complete jobs throughout (see
 * {@link startWorkload}). At the end every acknowledged job must have reached `done` and
 * appear in the ledger exactly once.
 */
import { createNetwork, type Network } from '@ballast/test/netns';
import { startRedisTopology, type TopologyOptions } from '@ballast/test/redis';
import { startWorkload, type WorkloadVerdict } from './workload.ts';

/** Options of {@link runPartitionScenario}. */
export interface PartitionScenarioOptions {
  /** Failure cycles (alternately partition and pause). @default 5 */
  cycles?: number;
  /** How long each failure lasts, ms (longer than Sentinel's failover). @default 6000 */
  faultMs?: number;
  /** Replicas each write waits for (`WAIT`); 0 shows what the guarantee rests on. @default 1 */
  minReplicas?: number;
  /** `min-replicas-to-write` of the servers. @default 1 */
  minReplicasToWrite?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What {@link runPartitionScenario} found. */
export interface PartitionReport extends WorkloadVerdict {
  cycles: Array<{ kind: 'partition' | 'pause'; primaryBefore: string; primaryAfter: string }>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A network for a Redis topology whose servers can be cut off: one side per data server
 * (`d0` the first primary, `d1`… the replicas), one (`s`) for every Sentinel; the
 * program using it (clients) is the side `host`.
 */
export interface RedisNetwork {
  readonly net: Network;
  readonly sides: readonly string[];
  /** For `startRedisTopology`: each server in its side. */
  readonly placement: NonNullable<TopologyOptions['placement']>;
  /** The side of a server's address, or undefined. */
  sideOf(host: string): string | undefined;
  /** Cuts the data server at `host` off from every other side (`withHost`: except the clients). */
  isolate(host: string, options?: { withHost?: boolean }): Promise<string>;
}

/** Creates a {@link RedisNetwork} for a primary and `replicas` replicas; needs root, `ip netns` and iptables. */
export async function createRedisNetwork(replicas = 2): Promise<RedisNetwork> {
  const sides = [...Array.from({ length: replicas + 1 }, (_, i) => `d${i}`), 's'];
  const net = await createNetwork(sides);
  const bySide = new Map(sides.map((side) => [net.address(side), side]));
  const sideOf = (host: string): string | undefined => bySide.get(host);
  return {
    net,
    sides,
    placement: (role, i) => {
      const side = role === 'sentinel' ? 's' : role === 'primary' ? 'd0' : `d${i + 1}`;
      return { host: net.address(side), wrap: ['ip', ...net.exec(side)] };
    },
    sideOf,
    isolate: async (host, options = {}) => {
      const side = sideOf(host);
      if (side === undefined) throw new Error(`no side of the network has the address ${host}`);
      const others = sides.filter((s) => s !== side);
      await net.partition(options.withHost ? ['host', side] : [side], options.withHost ? others : ['host', ...others]);
      return side;
    },
  };
}

/** Runs the scenario; needs root, `ip netns` and iptables (see `netnsUnavailable`). */
export async function runPartitionScenario(options: PartitionScenarioOptions = {}): Promise<PartitionReport> {
  const cycles = options.cycles ?? 5;
  const faultMs = options.faultMs ?? 6000;
  const log = options.log ?? (() => {});
  const { net, placement, sideOf, isolate } = await createRedisNetwork(2);
  const topology = await startRedisTopology({
    replicas: 2,
    sentinels: 3,
    downAfterMs: 1000,
    failoverTimeoutMs: 3000,
    persistence: 'everysec',
    minReplicasToWrite: options.minReplicasToWrite ?? 1,
    minReplicasMaxLagS: 2,
    placement,
  });
  const workload = startWorkload(topology, {
    producers: 4,
    consumers: 4,
    connection: { connectTimeout: 1000 },
    queue: { minReplicas: options.minReplicas ?? 1, replicationTimeoutMs: 500, leaseMs: 3000, pollMs: 200, maxDepth: 1_000_000 },
  });
  const cycleReports: PartitionReport['cycles'] = [];
  try {
    for (let cycle = 0; cycle < cycles; cycle++) {
      await sleep(1500);
      const kind = cycle % 2 === 0 ? 'partition' : 'pause';
      const before = await topology.currentPrimary();
      const side = sideOf(before.host) ?? '?';
      const process$ = [topology.primary, ...topology.replicas].find((p) => p.host === before.host && p.port === before.port);
      log(`cycle ${cycle + 1}: ${kind} of the primary ${side} (${workload.acknowledged.size} acknowledged so far)`);
      if (kind === 'partition') {
        await isolate(before.host, { withHost: true });
        await sleep(faultMs);
        await net.heal();
      } else {
        if (process$) process.kill(process$.pid, 'SIGSTOP');
        await sleep(faultMs);
        if (process$) process.kill(process$.pid, 'SIGCONT');
      }
      await sleep(3000); // Sentinel reconfigures the old primary as a replica
      const after = await topology.currentPrimary();
      cycleReports.push({ kind, primaryBefore: side, primaryAfter: sideOf(after.host) ?? '?' });
    }
    return { cycles: cycleReports, ...(await workload.verify(90_000)) };
  } finally {
    await workload.close();
    await topology.stop();
    await net.close();
  }
}
