/**
 * The balancing comparison's headline figures, from benchmarks/results/balancing.json
 * (see benchmarks/lib/figures.ts). The full report is benchmarks/results/balancing.md.
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { median } from '../lib/measure.ts';
import { fmt } from '../lib/report.ts';

interface Latency {
  p99: number;
}
interface SimRun {
  strategy: string;
  utilisation: number;
  latency: Latency;
}
interface LiveRun {
  balancer: string;
  kind: 'ballast' | 'nginx' | 'haproxy';
  strategy: string | null;
  latency: Latency;
  requestsPerCpuSecond: number;
}
interface BalancingResults {
  simulation: { command: string; settings: { durationMs: number }; scenarios: Array<{ name: string; runs: SimRun[] }> };
  live: { command: string; settings: { timeoutMs: number }; scenarios: Array<{ name: string; durationMs: number; runs: LiveRun[] }> };
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['packages/load-balancer/src', 'benchmarks/balancing'];

const ms = (value: number): string => (value >= 1000 ? `${fmt(value / 1000, 2)} s` : `${fmt(Math.round(value))} ms`);

export default function figures(results: BalancingResults): Figures {
  const sim = results.simulation.scenarios.find((s) => s.name === 'slow-server');
  const live = results.live.scenarios.find((s) => s.name === 'slow-server');
  const homogeneous = results.live.scenarios.find((s) => s.name === 'homogeneous');
  if (!sim || !live || !homogeneous) throw new Error('balancing results lack the slow-server or homogeneous scenario');
  const simP99 = (strategy: string): number => {
    const run = sim.runs.find((r) => r.strategy === strategy && r.utilisation === 0.8);
    if (run === undefined) throw new Error(`balancing simulation has no ${strategy} run at 80%`);
    return run.latency.p99;
  };
  const oracle = simP99('oracle');
  const vsOracle = (strategy: string): string => `${fmt(simP99(strategy) / oracle, 3)}×`;
  const liveRun = (runs: LiveRun[], balancer: string): LiveRun => {
    const run = runs.find((r) => r.balancer === balancer);
    if (run === undefined) throw new Error(`balancing live results have no run "${balancer}"`);
    return run;
  };
  const timeoutMs = results.live.settings.timeoutMs;
  // A p99 at the client's timeout is a request that timed out, not a latency.
  const p99 = (balancer: string): string => {
    const value = liveRun(live.runs, balancer).latency.p99;
    return value >= timeoutMs ? `≥ ${ms(timeoutMs)} (timed out)` : ms(value);
  };
  // Noise gauge: with equal weights these pairs run the same algorithm (runs ending in timeouts say nothing).
  const twins = [
    ['Ballast round robin', 'Ballast weighted round robin'],
    ['Ballast random', 'Ballast weighted random'],
  ] as const;
  const gaps = [homogeneous, live].flatMap((scenario) =>
    twins
      .map(([a, b]) => [liveRun(scenario.runs, a).latency.p99, liveRun(scenario.runs, b).latency.p99] as const)
      .filter(([a, b]) => Math.max(a, b) < timeoutMs)
      .map(([a, b]) => Math.max(a, b) / Math.min(a, b) - 1),
  );
  const noise = `${fmt(Math.max(...gaps) * 100, 2)}%`;
  const ballastRate = median(homogeneous.runs.filter((r) => r.kind === 'ballast').map((r) => r.requestsPerCpuSecond));
  const nginxRate = liveRun(homogeneous.runs, 'nginx round robin').requestsPerCpuSecond;

  return {
    summary: [
      summaryRow(
        'Balancing, one server of ten 5× slower, 80% load (simulation)',
        `p99: peak-EWMA ${vsOracle('peak-ewma')}, P2C ${vsOracle('p2c')} and least connections ${vsOracle('least-connections')} the full-scan oracle; round robin ${vsOracle('round-robin')} (simulated clients never time out, so this ratio grows with the run's length, ${fmt(results.simulation.settings.durationMs / 1000)} s here)`,
        results.simulation.command,
      ),
      summaryRow(
        `Balancing, live on loopback, one server 5× slower (one ${fmt(live.durationMs / 1000)} s run each)`,
        `p99 like for like: least connections, Ballast ${p99('Ballast least connections')} vs nginx \`least_conn\` ${p99('nginx least_conn')} and HAProxy \`leastconn\` ${p99('HAProxy leastconn')}; round robin ${p99('Ballast round robin')} vs ${p99('nginx round robin')} and ${p99('HAProxy roundrobin')}. Best of each: Ballast peak-EWMA ${p99('Ballast peak EWMA')}, nginx \`least_conn\` ${p99('nginx least_conn')}. Identical algorithms differed by up to ${noise} in this run (noise gauge), so smaller gaps are no verdict`,
        results.live.command,
      ),
      summaryRow(
        'Balancing, live, proxy cost',
        `Ballast's Node gateway serves ${fmt(ballastRate / nginxRate, 2)}× nginx's requests per CPU-second (${fmt(Math.round(ballastRate))} vs ${fmt(Math.round(nginxRate))}): it wins on where requests go, not on proxy cost`,
        results.live.command,
      ),
    ].join('\n'),
  };
}
