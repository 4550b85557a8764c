/**
 * `npm run chaos`: the distributed deployment (`npm run start:distributed`'s) under
 * open-loop load at a share of its measured capacity while a seeded fault schedule kills
 * and pauses its parts; per-second yield, harvest, p50 and p99 at the client; detection
 * and recovery per fault; after the drain, the invariants. Writes
 * benchmarks/results/chaos.{json,md,svg}.
 *
 *   npm run chaos                                   # 10 minutes at 50%, every fault once, seed 1
 *   npm run chaos -- --duration=120 --seed=7        # 2 minutes, another schedule
 *   npm run chaos -- --share=0.3 --faults=kill-api,kill-worker,kill-redis-primary
 *   npm run chaos -- --logs=/tmp/chaos-logs             # keep every service's log
 */
import { FAULT_KINDS, type FaultKind, runChaos } from '@ballast/app-system';
import { netnsUnavailable } from '@ballast/test/netns';
import { publishFigures } from '../lib/figures.ts';
import { loadAverage } from '../lib/measure.ts';
import { fmt, machine, markdownTable, printTable, writeResult } from '../lib/report.ts';
import { timelineChart } from './chart.ts';
import { GOALS, goals } from './goals.ts';

const USAGE = 'npm run chaos -- [--duration=<s>] [--share=<0..2>] [--seed=<n>] [--faults=<kind,…>] [--logs=<dir>]';
const arg = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const fail = (message: string): never => {
  console.error(`${message}\nusage: ${USAGE}\nfaults: ${FAULT_KINDS.join(', ')}`);
  process.exit(2);
};
const durationS = Number(arg('duration') ?? 600);
if (!(durationS >= 10 && durationS <= 7200)) fail(`--duration must be seconds from 10 to 7200, got ${arg('duration')}`);
const share = Number(arg('share') ?? 0.5);
if (!(share > 0 && share <= 2)) fail(`--share must be in (0, 2], got ${arg('share')}`);
const seed = Number(arg('seed') ?? 1);
if (!Number.isInteger(seed) || seed < 0) fail(`--seed must be a whole number, got ${arg('seed')}`);
const faults = (arg('faults')?.split(',') ?? [...FAULT_KINDS]) as FaultKind[];
for (const f of faults) if (!FAULT_KINDS.includes(f)) fail(`--faults: unknown fault ${JSON.stringify(f)}`);
// The partition fault runs the Redis servers in network namespaces: root, ip netns, iptables.
const noNetns = faults.includes('partition-redis-primary') ? await netnsUnavailable() : undefined;
if (noNetns && arg('faults')) fail(`--faults: partition-redis-primary cannot run here: ${noNetns}`);
if (noNetns) {
  console.log(`chaos: no partition-redis-primary fault (${noNetns})`);
  faults.splice(faults.indexOf('partition-redis-primary'), 1);
}

const loadBefore = loadAverage();
console.log(`chaos: ${durationS} s at ${Math.round(share * 100)}% of capacity, seed ${seed}; load average ${loadBefore.join(' ')}`);
const keepLogsTo = arg('logs');
const result = await runChaos({ seed, durationMs: durationS * 1000, share, faults, keepLogsTo, log: (line) => console.log(line) });
const loadAfter = loadAverage();

printTable(
  'per second (at the client)',
  result.seconds.map((s) => ({
    s: s.second,
    sent: s.sent,
    ok: s.ok,
    failed: s.failed,
    '4xx': s.refused,
    yield: s.ok + s.failed ? s.ok / (s.ok + s.failed) : 1,
    harvest: s.harvest,
    'p50 ms': Math.round(s.p50),
    'p99 ms': Math.round(s.p99),
    faults: s.faults.join('; '),
  })),
);
const faultRows = result.faults.map((f, i) => ({
  '#': i + 1,
  't s': f.atMs / 1000,
  fault: f.kind,
  target: f.target,
  'detected s': f.detectedMs === undefined ? '—' : fmt(f.detectedMs / 1000),
  'recovered s': f.recoveredMs === undefined ? '—' : fmt(f.recoveredMs / 1000),
  'client failures for s': f.clientRecoveredMs === undefined ? '—' : fmt(f.clientRecoveredMs / 1000),
  'jobs lost': f.lost ?? '—',
  what: f.note,
}));
printTable('faults', faultRows);
const inv = result.invariants;
for (const f of result.failures)
  console.log(`failed at ${(f.atMs / 1000).toFixed(1)} s after ${f.latencyMs} ms: ${f.status} ${f.code ?? ''} ${f.requestId ?? ''}`);
console.log(
  `\nanswers by status: ${Object.entries(result.statuses)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`,
);
console.log(`\ninvariants after the drain:
  acknowledged jobs     ${inv.acknowledged} (${Object.entries(inv.outcomes)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')})
  lost                  ${inv.lost.length}${
    inv.lost.length
      ? `: ${inv.lost
          .slice(0, 10)
          .map((id) => `${id} (${inv.lostStates?.[id] ?? '?'})`)
          .join(', ')}`
      : ''
  }
  finished twice        ${inv.finishedTwice.length}${inv.finishedTwice.length ? `: ${inv.finishedTwice.slice(0, 10).join(', ')}` : ''}
  usage (billed once)   ${inv.usage.ok ? 'ok' : 'VIOLATED'}: ${inv.usage.jobs} ledger jobs, ${inv.usage.discrepancies} discrepancies
  memory                ${inv.overBound.length === 0 ? 'every service' : `OVER: ${inv.overBound.join(', ')}`} under ${inv.memoryBoundBytes / 2 ** 20} MiB RSS`);
if (inv.error) console.log(`  NOT CHECKED: ${inv.error}`);
if (!inv.usage.ok) console.log(inv.usage.report);
const verdicts = goals(result);
printTable('goals', verdicts);
console.log(`\nload average ${loadBefore.join(' ')} before, ${loadAfter.join(' ')} after`);

const data = {
  machine: machine(),
  loadAverage: { before: loadBefore, after: loadAfter },
  command: commandLine(),
  goals: GOALS,
  verdicts,
  ...result,
};
writeResult('chaos.json', data);
writeResult('chaos.svg', timelineChart(`npm run chaos: ${durationS} s at ${Math.round(share * 100)}% of capacity, seed ${seed}`, result));
writeResult(
  'chaos.md',
  `# Chaos run\n\n\`${commandLine()}\` — ${new Date().toISOString()}, ${machine().cpus} cores, load average ${loadBefore.join(' ')} before, ${loadAfter.join(' ')} after.\n\n` +
    `Capacity ${fmt(result.capacityPerSec)} requests/s (closed loop); offered ${fmt(result.ratePerSec)}/s. Images: ${result.imageBytes.count}, mean ${Math.round(result.imageBytes.mean / 1024)} KB, max ${Math.round(result.imageBytes.max / 1024)} KB.\n\n` +
    `Answers by status: ${Object.entries(result.statuses)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.\n\n![timeline](chaos.svg)\n\n## Goals\n\n${markdownTable(verdicts)}\n\n## Faults\n\n${markdownTable(faultRows)}\n\n` +
    `## Invariants\n\n${markdownTable([
      {
        acknowledged: inv.acknowledged,
        lost: inv.lost.length,
        'finished twice': inv.finishedTwice.length,
        'usage ledger jobs': inv.usage.jobs,
        'usage discrepancies': inv.usage.discrepancies,
        'over memory bound': inv.overBound.length,
      },
    ])}\n\n${markdownTable(inv.memory.map((m) => ({ service: m.service, 'RSS before MiB': (m.beforeBytes ?? 0) / 2 ** 20, 'RSS after MiB': (m.afterBytes ?? 0) / 2 ** 20 })))}\n`,
);
console.log('wrote benchmarks/results/chaos.{json,md,svg}');
await publishFigures('chaos');
process.exit(inv.ok ? 0 : 1);

/** The command that reproduces the figures (`--logs` only keeps logs: left out). */
function commandLine(): string {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--logs='));
  return `npm run chaos${args.length ? ` -- ${args.join(' ')}` : ''}`;
}
