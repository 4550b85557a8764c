/**
 * The balancing comparison's headline figures, from benchmarks/results/balancing.json
 * (see benchmarks/lib/figures.ts). The full report is benchmarks/results/balancing.md.
 * Live figures are medians [interval] over repeated, interleaved runs; "lower"/"higher"
 * only where the intervals separate (stats.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable, type Row } from '../lib/report.ts';
import { capacityShareCell, interval, isCurrentLive, LIKE_FOR_LIKE } from './report/live.ts';
import type { BalancingResults, LiveRun, LiveScenarioResult } from './results.ts';
import { compare, type Interval } from './stats.ts';

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['packages/load-balancer/src', 'benchmarks/balancing'];

const verdict = (a: Interval, b: Interval): string => (compare(a, b) === 'overlap' ? 'overlapping' : compare(a, b));

export default function figures(results: BalancingResults): Figures {
  const { simulation, live } = results;
  if (!simulation) throw new Error('balancing results have no simulation');
  if (!isCurrentLive(live)) throw new Error('balancing results have no live run in the current format (repeated runs with intervals)');

  const sim = simulation.scenarios.find((s) => s.name === 'slow-server');
  if (!sim) throw new Error('balancing simulation has no slow-server scenario');
  const simP99 = (strategy: string): number => {
    const run = sim.runs.find((r) => r.strategy === strategy && r.utilisation === 0.8);
    if (run === undefined) throw new Error(`balancing simulation has no ${strategy} run at 80%`);
    return run.latency.p99;
  };
  const vsOracle = (strategy: string): string => `${fmt(simP99(strategy) / simP99('oracle'), 3)}×`;
  const timeoutMs = simulation.settings.clientTimeoutMs;
  const clients = timeoutMs === undefined ? 'clients never time out' : `clients time out after ${fmt(timeoutMs / 1000)} s`;
  const rrTimesOut = timeoutMs !== undefined && simP99('round-robin') >= timeoutMs;

  const slow = live.scenarios.find((s) => s.name === 'slow-server');
  if (!slow) throw new Error('balancing live results have no slow-server scenario');
  const run = (sc: LiveScenarioResult, find: (r: LiveRun) => boolean, what: string): LiveRun => {
    const r = sc.runs.find(find);
    if (r === undefined) throw new Error(`balancing live ${sc.name} has no run for ${what}`);
    return r;
  };
  const pairs = LIKE_FOR_LIKE.filter((p) => p.algorithm !== 'best of two random choices').map((pair) => {
    const b = run(slow, (r) => r.kind === 'ballast' && r.strategy === pair.ballast && !r.balancer.includes('netProxy'), pair.ballast);
    const n = run(slow, (r) => r.balancer === pair.nginx, pair.nginx);
    const h = run(slow, (r) => r.balancer === pair.haproxy, pair.haproxy);
    return `${pair.algorithm}: Ballast ${interval(b.p99)} ms, nginx ${interval(n.p99)}, HAProxy ${interval(h.p99)} (Ballast vs nginx: ${verdict(b.p99, n.p99)}; vs HAProxy: ${verdict(b.p99, h.p99)})`;
  });
  const best = (runs: LiveRun[]): LiveRun => [...runs].sort((a, b) => a.p99.median - b.p99.median)[0]!;
  const topBallast = best(slow.runs.filter((r) => r.kind === 'ballast'));
  const topPeer = best(slow.runs.filter((r) => r.kind === 'nginx' || r.kind === 'haproxy'));
  const load = `machine load average ${fmt(live.loadAverage.before, 3)} before, ${fmt(live.loadAverage.after, 3)} after`;

  const cost = live.proxyCost?.runs ?? [];
  const costOf = (find: (r: (typeof cost)[number]) => boolean): (typeof cost)[number] | undefined => cost.find(find);
  const node = costOf((r) => r.kind === 'ballast' && !r.proxy.includes('Hono') && !r.proxy.includes('netProxy'));
  const net = costOf((r) => r.kind === 'ballast' && r.proxy.includes('netProxy'));
  const nginx = costOf((r) => r.kind === 'nginx');
  const rows = [
    summaryRow(
      `Balancing, one server of ten 5× slower, 80% load (simulation; every strategy at its defaults; ${clients})`,
      `p99: peak-EWMA ${vsOracle('peak-ewma')}, P2C ${vsOracle('p2c')} and least connections ${vsOracle('least-connections')} the full-scan oracle; round robin ${vsOracle('round-robin')}${rrTimesOut ? ' (its p99 is the client timeout)' : ''}`,
      simulation.command,
    ),
    summaryRow(
      `Balancing, live on loopback, one server 5× slower, every balancer and strategy at its defaults, ${live.settings.repeats} interleaved runs each (${load})`,
      `p99 median [interval] like for like, ${pairs.join('; ')}. Best of each: ${topBallast.balancer} ${interval(topBallast.p99)} ms, ${topPeer.balancer} ${interval(topPeer.p99)} ms (${verdict(topBallast.p99, topPeer.p99)})`,
      live.command,
    ),
  ];
  if (node && nginx) {
    const others = cost
      .filter((r) => r !== node && r !== net && r.kind !== 'nginx' && r.kind !== 'haproxy')
      .map((r) => `${r.proxy} ${interval(r.requestsPerCpuSecond)}`);
    rows.push(
      summaryRow(
        'Balancing, live, proxy cost (same run; requests per CPU-second of the proxy process)',
        `Ballast's \`nodeProxy\` ${interval(node.requestsPerCpuSecond)}${net ? `, \`netProxy\` ${interval(net.requestsPerCpuSecond)}` : ''}, ${others.join(', ')}, nginx ${interval(nginx.requestsPerCpuSecond)}: \`nodeProxy\` ${fmt(node.requestsPerCpuSecond.median / nginx.requestsPerCpuSecond.median, 2)}× nginx${net ? `, \`netProxy\` ${fmt(net.requestsPerCpuSecond.median / nginx.requestsPerCpuSecond.median, 2)}×` : ''}`,
        live.command,
      ),
    );
  }
  return { summary: rows.join('\n'), 'proxy-cost': proxyCostTable(live, load) };
}

/** Every proxy of the proxy-cost part, fastest per CPU-second first, against nginx; with the latency each adds. */
function proxyCostTable(live: BalancingResults['live'] & object, load: string): string {
  const cost = live.proxyCost;
  const nginx = cost?.runs.find((r) => r.kind === 'nginx');
  if (!cost || !nginx) return '(no proxy-cost results: run `npm run bench:balancing -- --live`)';
  const rows: Row[] = [...cost.runs]
    .sort((a, b) => b.requestsPerCpuSecond.median - a.requestsPerCpuSecond.median)
    .map((r) => ({
      proxy: r.proxy,
      'requests per CPU-second': interval(r.requestsPerCpuSecond),
      '× nginx': fmt(r.requestsPerCpuSecond.median / nginx.requestsPerCpuSecond.median, 2),
      'added p50 µs': interval(r.addedP50Us),
      'added p99 µs': interval(r.addedP99Us),
      'at requests/s': fmt(r.latencyRatePerSec.median),
      '% of capacity': capacityShareCell(r),
    }));
  return [
    `Median [interval] of ${live.settings.repeats} interleaved runs, ${load}; command \`${live.command}\`.`,
    '',
    markdownTable(rows),
  ].join('\n');
}
