/**
 * The composed stack (`npm run bench:composed`): retry ∘ circuit breaker ∘ concurrency
 * limiter ∘ timeout around a call that succeeds at once, per successful call, side by side
 * in one run with cockatiel's `wrap` of its equivalents and with Ballast as it was before
 * the policy contract (see composed/contenders.ts).
 *
 * Each contender runs in a process of its own, in interleaved rounds (lib/isolated.ts).
 * Reported: CPU time per call over the bare call (median round: on a shared machine wall
 * time mostly measures the other tenants) and heap bytes allocated per call over the bare
 * call. Results: benchmarks/results/composed.{json,md}.
 */
import { baseline } from '../lib/baseline.ts';
import { publishFigures } from '../lib/figures.ts';
import { interleavedIsolated } from '../lib/isolated.ts';
import { loadAverage } from '../lib/measure.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';
import { BALLAST, BALLAST_NO_HISTOGRAM, BARE, BEFORE, COCKATIEL, COCKATIEL_COOP, NAMES } from './contenders.ts';

const ITERATIONS = Number(process.env.ITERATIONS ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 21);

async function main(): Promise<void> {
  const start = loadAverage();
  const base = baseline();
  const host = machine();
  console.log(`Machine: ${host.cpuModel} × ${host.cpus}, Node ${host.node}, load average ${start.join(' ')}`);
  console.log(`Baseline: ${'sha' in base ? `${base.ref} (${base.sha.slice(0, 10)})` : `unavailable (${base.unavailable})`}`);
  const names = NAMES.filter((name) => name !== BEFORE || 'sha' in base);

  const results = await interleavedIsolated(new URL('./contenders.ts', import.meta.url).href, names, {
    iterations: ITERATIONS,
    rounds: ROUNDS,
  });
  const end = loadAverage();
  const bare = results.get(BARE) as { cpuNs: number; bytes: number };
  const rows: Row[] = names.map((name) => {
    const r = results.get(name) as { cpuNs: number; wallNs: number; bytes: number };
    return {
      stack: name,
      'CPU ns/call': r.cpuNs,
      'overhead ns/call': name === BARE ? 0 : r.cpuNs - bare.cpuNs,
      'wall ns/call': r.wallNs,
      'bytes/call': r.bytes,
      'bytes/call over bare': name === BARE ? 0 : r.bytes - bare.bytes,
    };
  });
  printTable('Composed stack, per successful call (CPU time; heap bytes allocated)', rows);

  const overhead = (name: string): number => (rows.find((r) => r.stack === name)?.['overhead ns/call'] as number) ?? Number.NaN;
  const ours = overhead(BALLAST);
  const noHistogram = overhead(BALLAST_NO_HISTOGRAM);
  const theirs = Math.min(overhead(COCKATIEL), overhead(COCKATIEL_COOP));
  const before = overhead(BEFORE);
  const goals = [
    `Ballast composed stack: ${fmt(ours)} ns per successful call over the bare call (goal <= 1000) ${ours <= 1000 ? 'MET' : 'MISSED'}`,
    `Ballast vs cockatiel's cheapest equivalent wrap (${fmt(theirs)} ns): ${fmt(ours / theirs)}x (goal <= 1) ${ours <= theirs ? 'MET' : 'MISSED'}`,
    `Ballast with the breaker's recordLatency: false (no latency histogram, as cockatiel's stack): ${fmt(noHistogram)} ns per successful call (goal <= 1000) ${noHistogram <= 1000 ? 'MET' : 'MISSED'}`,
    ...(Number.isFinite(before) ? [`Ballast vs the same stack before the contract (${fmt(before)} ns): ${fmt(ours / before)}x`] : []),
  ];
  console.log(`\nGoals:\n${goals.map((g) => `- ${g}`).join('\n')}`);

  const markdown = [
    '# Composed stack: retry ∘ breaker ∘ limiter ∘ timeout',
    '',
    `\`npm run bench:composed\` — ${host.cpuModel} × ${host.cpus}, Node ${host.node}, load average ${start.join(' ')} at the start and ${end.join(' ')} at the end, ${host.date}.`,
    `Each contender in a process of its own; median of ${ROUNDS} interleaved rounds of ${ITERATIONS.toLocaleString('en-US')} sequential calls each; CPU time of that process per call; heap bytes from batches of 2,000 calls after a full GC.`,
    `Baseline ("before the contract"): ${'sha' in base ? `commit ${base.sha.slice(0, 10)}` : 'unavailable'}.`,
    '',
    markdownTable(rows),
    '',
    ...goals.map((g) => `- ${g}`),
    '',
  ].join('\n');
  writeResult('composed.md', markdown);
  writeResult('composed.json', {
    machine: { ...host, loadAverage: start, loadAverageAtEnd: end },
    baseline: base,
    iterations: ITERATIONS,
    rounds: ROUNDS,
    isolated: true,
    rows,
    goals,
  });
  await publishFigures('composed');
}

await main();
process.exit(0);
