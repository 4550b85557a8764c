/**
 * A short chaos run (`npm run chaos`'s, a minute with three or four faults) against the
 * whole distributed deployment: a kill -9 of an API server, of a worker and of the Redis
 * primary under load, and (where network namespaces are available: root, ip netns,
 * iptables) the Redis primary cut off from everyone for longer than Sentinel's
 * down-after, then healed. It asserts the invariants, never timings: every acknowledged
 * job finished exactly once, every finished job recorded and billed exactly once, the old
 * primary back as a replica with one primary in all after each Redis fault, and once the
 * deployment is stopped no process of it is left.
 */

import {
  type ChaosResult,
  type FaultKind,
  faultSchedule,
  formatSchedule,
  type LaunchedTopology,
  launchDistributed,
  runChaos,
} from '@ballast/app-system';
import { netnsUnavailable } from '@ballast/test/netns';
import { isAlive } from '@ballast/test/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SEED = 3;
const noNetns = await netnsUnavailable();
if (noNetns) console.warn(`chaos test: no partition fault (${noNetns})`);
const FAULTS = [
  'kill-api',
  'kill-worker',
  'kill-redis-primary',
  ...(noNetns ? [] : (['partition-redis-primary'] as const)),
] as const satisfies readonly FaultKind[];
let topology: LaunchedTopology | undefined;
let result: ChaosResult;
let pids: number[] = [];

beforeAll(async () => {
  topology = await launchDistributed({ apis: 3, workers: 2, partitionable: !noNetns });
  pids = [...topology.services.map((s) => s.pid), ...topology.redis.processes.map((p) => p.pid), topology.postgres.pid];
  // Capacity given rather than measured: the run's length stays bounded on a loaded machine.
  result = await runChaos({ topology, seed: SEED, durationMs: 60_000, capacityPerSec: 4, share: 0.5, faults: FAULTS });
}, 900_000);

afterAll(async () => {
  await topology?.close();
}, 120_000);

describe('a short chaos run', { timeout: 900_000 }, () => {
  it('prints a seeded schedule that replays the same', () => {
    expect(result.schedule).toEqual(faultSchedule(SEED, 60_000, FAULTS));
    expect(result.schedule.map((f) => f.kind).sort()).toEqual([...FAULTS].sort());
    expect(formatSchedule(SEED, result.schedule)).toContain(`--seed=${SEED}`);
  });

  it('strikes every fault, and the system recovers from each', () => {
    expect(result.faults).toHaveLength(FAULTS.length);
    for (const f of result.faults) expect(f.recoveredMs, `${f.kind} ${f.target}`).toBeDefined();
  });

  it('after each Redis fault, promotes a replica, takes the old primary back as a replica and has one primary', () => {
    const redis = result.faults.filter((f) => f.kind.endsWith('-redis-primary'));
    expect(redis).toHaveLength(noNetns ? 1 : 2);
    for (const f of redis) {
      expect(f.detectedMs, `${f.kind}: a replica promoted`).toBeDefined();
      expect(f.primaries, f.kind).toBe(1);
      expect(f.lost, f.kind).toBe(0);
    }
  });

  it('loses no acknowledged job and finishes none twice', () => {
    const inv = result.invariants;
    expect(inv.error).toBeUndefined();
    expect(inv.acknowledged).toBeGreaterThan(20);
    expect(inv.lost).toEqual([]);
    expect(inv.finishedTwice).toEqual([]);
  });

  it('records and bills every finished job exactly once', () => {
    const usage = result.invariants.usage;
    expect(usage.ok, usage.report).toBe(true);
    expect(usage.jobs).toBeGreaterThanOrEqual(result.invariants.acknowledged);
  });

  it('leaves no process behind once stopped', async () => {
    const running = topology as LaunchedTopology;
    pids.push(...running.services.map((s) => s.pid), ...running.redis.processes.map((p) => p.pid), running.postgres.pid);
    await running.close();
    topology = undefined;
    expect(pids.filter(isAlive)).toEqual([]);
  });
});
