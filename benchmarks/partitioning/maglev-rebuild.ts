/**
 * Maglev rebuilds: what a membership change costs the lookups around it, in both modes.
 *
 * - `sync`: the first lookup after a change rebuilds the whole table in its own call, so
 *   that one lookup (and everything else on the event loop) waits for the rebuild.
 * - `background`: the table is refilled in chunks, one per event-loop turn, while lookups
 *   keep using the previous table (a removed node's keys go to the next present entry).
 *   Each turn here runs one batch of lookups, so the batches interleave with the chunks the
 *   way a server's requests would.
 *
 * Each change removes the last node or adds it back, alternately. Rebuild and chunk times
 * are process CPU time (`process.cpuUsage`, precise where the per-thread figure is counted
 * in 4 ms ticks), so that time the shared machine gave to other processes does not count
 * as a chunk blocking the event loop; the background rebuild's duration from change to
 * swap is wall-clock time.
 */
import { MaglevPartitioner, type MaglevRebuiltEvent } from '@ballast/partitioning';
import { median } from '../lib/measure.ts';
import type { Row } from '../lib/report.ts';

/** One configuration's figures (medians over the rebuilds, unless named `max`). */
export interface MaglevRebuildRecord {
  nodes: number;
  tableSize: number;
  /** sync: CPU time of the first lookup after a change, ms (it runs the rebuild). */
  syncFirstLookupMs: number;
  syncFirstLookupMaxMs: number;
  /** background: wall-clock time from the change to the swap, ms. */
  backgroundDurationMs: number;
  /** background: CPU time spent filling, ms. */
  backgroundBusyMs: number;
  backgroundChunks: number;
  /** background: each rebuild's longest chunk, CPU ms — how long it blocked the event loop at most (median over rebuilds). */
  backgroundMaxChunkMs: number;
  /** background: the longest chunk of all, CPU ms. */
  backgroundMaxChunkMaxMs: number;
  /** Lookup cost with no rebuild running, ns. */
  steadyNsPerLookup: number;
  /** Lookup cost during a background rebuild (the previous table, with fallbacks), ns. */
  duringNsPerLookup: number;
  /** Share of lookups during the rebuilds that went through the fallback. */
  fallbackShare: number;
}

export const REBUILDS = 9;
export const BATCH = 2_000;

const round = (x: number, digits = 3): number => Number(x.toPrecision(digits));
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** CPU time of the process, ms. */
const cpuClock = {
  now: (): number => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  },
};
const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `node-${i}`);

/** Removes the last node on even rounds, adds it back on odd ones. */
function change(p: MaglevPartitioner, n: number, round: number): void {
  if (round % 2 === 0) p.remove(`node-${n - 1}`);
  else p.add(`node-${n - 1}`);
}

/** ns per lookup for one batch of keys starting at `from`. */
function batch(p: MaglevPartitioner, keys: string[], from: number): number {
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < BATCH; i++) sink += p.owner(keys[(from + i) % keys.length]!).length;
  const ns = Number(process.hrtime.bigint() - start) / BATCH;
  if (sink === -1) console.log(sink);
  return ns;
}

function syncFirstLookups(n: number, tableSize: number | undefined, keys: string[]): number[] {
  const p = new MaglevPartitioner({ nodes: ids(n), tableSize });
  p.owner(keys[0]!);
  const times: number[] = [];
  for (let r = 0; r < REBUILDS; r++) {
    change(p, n, r);
    const start = cpuClock.now();
    p.owner(keys[r]!);
    times.push(cpuClock.now() - start);
  }
  return times;
}

async function background(
  n: number,
  tableSize: number | undefined,
  keys: string[],
): Promise<{ events: MaglevRebuiltEvent[]; wallMs: number[]; steady: number[]; during: number[]; fallbackShare: number }> {
  const p = new MaglevPartitioner({ nodes: ids(n), tableSize, rebuild: 'background', clock: cpuClock });
  await p.whenRebuilt();
  const events: MaglevRebuiltEvent[] = [];
  const wallMs: number[] = [];
  let changed = 0;
  p.on('rebuilt', (e) => {
    events.push(e);
    wallMs.push(performance.now() - changed);
  });
  const steady: number[] = [];
  const during: number[] = [];
  let from = 0;
  let lookupsDuring = 0;
  for (let r = 0; r < REBUILDS; r++) {
    for (let t = 0; t < 20; t++) {
      steady.push(batch(p, keys, from));
      from += BATCH;
      await turn();
    }
    changed = performance.now();
    change(p, n, r);
    while (p.stats().stale) {
      during.push(batch(p, keys, from));
      from += BATCH;
      lookupsDuring += BATCH;
      await turn();
    }
  }
  const fallbackShare = p.stats().fallbacks / lookupsDuring;
  p.close();
  return { events, wallMs, steady, during, fallbackShare };
}

/** Runs every configuration; `sizes` lists node counts, with an optional fixed table size. */
export async function maglevRebuild(sizes: Array<{ nodes: number; tableSize?: number }>, keys: string[]): Promise<MaglevRebuildRecord[]> {
  const records: MaglevRebuildRecord[] = [];
  for (const { nodes, tableSize } of sizes) {
    const sync = syncFirstLookups(nodes, tableSize, keys);
    const bg = await background(nodes, tableSize, keys);
    const { events } = bg;
    records.push({
      nodes,
      tableSize: events[0]!.tableSize,
      syncFirstLookupMs: round(median(sync)),
      syncFirstLookupMaxMs: round(Math.max(...sync)),
      backgroundDurationMs: round(median(bg.wallMs)),
      backgroundBusyMs: round(median(events.map((e) => e.busyMs))),
      backgroundChunks: median(events.map((e) => e.chunks)),
      backgroundMaxChunkMs: round(median(events.map((e) => e.maxChunkMs))),
      backgroundMaxChunkMaxMs: round(Math.max(...events.map((e) => e.maxChunkMs))),
      steadyNsPerLookup: round(median(bg.steady)),
      duringNsPerLookup: round(median(bg.during)),
      fallbackShare: round(bg.fallbackShare),
    });
  }
  return records;
}

/** Table rows for the report. */
export function maglevRebuildRows(records: MaglevRebuildRecord[]): Row[] {
  return records.map((r) => ({
    nodes: r.nodes,
    'table size': r.tableSize,
    'sync: first lookup after a change, CPU ms (median / max)': `${r.syncFirstLookupMs} / ${r.syncFirstLookupMaxMs}`,
    'background: change to swap, wall ms': r.backgroundDurationMs,
    'background: CPU ms': r.backgroundBusyMs,
    chunks: r.backgroundChunks,
    'longest chunk, CPU ms (median / max)': `${r.backgroundMaxChunkMs} / ${r.backgroundMaxChunkMaxMs}`,
    'ns/lookup steady': r.steadyNsPerLookup,
    'ns/lookup during rebuild': r.duringNsPerLookup,
    'lookups via fallback': `${round(r.fallbackShare * 100, 2)}%`,
  }));
}
