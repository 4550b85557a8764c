/**
 * Builds `benchmarks/results/balancing.md` and its SVG charts from the JSON results:
 * headline findings and goal checks first, then a table and charts per scenario.
 */
import { fmt, markdownTable, type Row } from '../../lib/report.ts';
import type { BalancingResults, SimulationResults } from '../results.ts';
import type { SimRun, SimScenarioResult } from '../sim/run-sim.ts';
import { isCurrentLive, liveGoals, liveHeadlines, liveSection } from './live.ts';
import { latencyChart, ratioHeatmap, shareChart } from './svg.ts';

const CHART_DIR = 'balancing';

/** Why each scenario separates the strategies: the mechanism, not the numbers. */
const WHY: Record<string, string> = {
  homogeneous:
    'With identical servers every strategy spreads load evenly on average; what separates them is how they handle the moments when one queue happens to be longer. Strategies that look at in-flight requests (least connections, P2C, peak EWMA) avoid those queues, blind ones (round robin, random) walk into them.',
  heterogeneous:
    'Unweighted blind strategies give every server the same share, so the small servers overload and their queues grow for the whole run. Weighted strategies follow the configured capacity; strategies that count in-flight requests per weight adapt even without being told.',
  slowdown:
    'Load-aware strategies notice the change through the queue building up (least connections, P2C) or the latency rising (peak EWMA); round robin and random never do. The table shows how long each takes to cut the slow server back to under half its fair share.',
  'slow-server':
    'Round robin and random keep sending the slow server a tenth of the traffic though it can take only a fiftieth: its queue grows without bound. Least connections, P2C and peak EWMA see its requests pile up (or its latency rise) and send it only what it can finish.',
  stalls:
    'During a stall the server finishes nothing, so its in-flight count climbs; load-aware strategies stop sending it work within a few requests, blind ones keep queueing a tenth of the traffic behind the pause.',
  'failing-server':
    'A server that fails fast looks idle and quick: a pure least-loaded rule sends it more traffic (the oracle, which ignores errors, shows this black hole). Outlier detection, shared by every strategy of the package, ejects it after a few failures, so errors stay near zero. The price shows at 95%: without the failing server the other nine must carry 105% of their capacity, and latency climbs, while the oracle keeps using the half of s0 that works.',
  'crash-return':
    'Requests to a crashed server fail at once; outlier detection ejects it after consecutive failures, and it is probed again when the ejection ends. After it returns, strategies differ in how fast they give it back its share.',
  bursty:
    'Bursts exceed capacity for a few hundred milliseconds, so every strategy queues; balancing decides whether the backlog is shared evenly (short queues everywhere) or piles onto a few servers.',
  'heavy-tail':
    'A few very long requests each hold a slot; a request queued behind one waits for it. Strategies that count in-flight requests route around the occupied slot, blind ones do not.',
  'cache-affinity':
    'Hash routing sends each key to the same server, whose cache then answers it in a tenth of the time; every other strategy spreads a key over all servers and mostly misses. Bounded-load hashing keeps most keys on their server while capping the busiest one, at the cost of some misses.',
};

/** Notes on particular strategies; the ones that depend on figures are computed. */
function strategyNotes(sim: SimulationResults): string[] {
  const notes: string[] = [];
  const homo = sim.scenarios.find((s) => s.name === 'homogeneous');
  const same = (a: string, b: string): boolean =>
    homo !== undefined && sim.settings.utilisations.every((u) => run(homo, a, u)?.latency.p99 === run(homo, b, u)?.latency.p99);
  if (same('round-robin', 'weighted-round-robin') && same('random', 'weighted-random')) {
    notes.push(
      '- **Weighted round robin and weighted random** are the unweighted algorithms when all weights are equal: their rows match round robin and random exactly except in the heterogeneous scenario, where the weights are the whole point.',
    );
  }
  notes.push(
    '- **Hash affinity** is only as balanced as the hash spreads keys, and a key stays with its server however slow that server gets, unless the bounded-load variant spills it to the next server when its owner is busy.',
    '- **The oracle** ignores errors, so in the failing-server scenario it is a latency reference only (see its error rate).',
  );
  return notes;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function label(results: SimulationResults, id: string): string {
  if (id === 'oracle') return 'oracle (full scan)';
  return results.strategies.find((s) => s.id === id)?.label ?? id;
}

/** A time to adapt, measured in 100-ms windows: `NEVER` (-1) reads "never", 0 reads "< 100". */
function adaptMs(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  if (value < 0) return 'never';
  return value === 0 ? '< 100' : fmt(value);
}

function pct(value: number): string {
  return `${fmt(value * 100)}%`;
}

function times(value: number): string {
  return Number.isFinite(value) ? `${fmt(value)}×` : '—';
}

function run(scenario: SimScenarioResult, strategy: string, utilisation: number): SimRun | undefined {
  return scenario.runs.find((r) => r.strategy === strategy && r.utilisation === utilisation);
}

export interface Goal {
  goal: string;
  measured: string;
  met: boolean | null;
}

/** The issue's goals, checked against one run's figures. */
export function goals(results: BalancingResults): Goal[] {
  const out: Goal[] = [];
  const sim = results.simulation;
  const slow = sim?.scenarios.find((s) => s.name === 'slow-server');
  if (sim && slow) {
    const oracleP99 = run(slow, 'oracle', 0.8)?.latency.p99 ?? Number.NaN;
    const rr = run(slow, 'round-robin', 0.8)?.latency.p99;
    for (const id of ['p2c', 'peak-ewma']) {
      const r = run(slow, id, 0.8);
      if (!r) {
        out.push({
          goal: `Simulation, one server 5× slower, 80%: ${label(sim, id)} p99 ≤ 2× oracle`,
          measured: 'strategy missing',
          met: null,
        });
        continue;
      }
      const ratio = r.latency.p99 / oracleP99;
      out.push({
        goal: `Simulation, one server 5× slower, 80%: ${label(sim, id)} p99 within 2× of the oracle`,
        measured: `${fmt(r.latency.p99)} ms vs ${fmt(oracleP99)} ms = ${times(ratio)}`,
        met: ratio <= 2,
      });
      if (rr !== undefined) {
        const gain = rr / r.latency.p99;
        out.push({
          goal: `Simulation, one server 5× slower, 80%: ${label(sim, id)} p99 at least 5× lower than round robin`,
          measured: `round robin ${fmt(rr)} ms ÷ ${fmt(r.latency.p99)} ms = ${times(gain)}`,
          met: gain >= 5,
        });
      }
    }
  }
  if (isCurrentLive(results.live)) out.push(...liveGoals(results.live));
  return out;
}

/** Lowest p99 among the package's strategies, among those whose error rate is within half a point of the best. */
function winner(scenario: SimScenarioResult, utilisation: number): SimRun | undefined {
  const runs = scenario.runs.filter((r) => r.utilisation === utilisation && r.strategy !== 'oracle');
  const minErr = Math.min(...runs.map((r) => r.errorRate));
  return runs
    .filter((r) => r.errorRate <= minErr + 0.005)
    .sort((a, b) => a.latency.p99 - b.latency.p99 || a.latency.p999 - b.latency.p999 || a.latency.p50 - b.latency.p50)[0];
}

function simSection(sim: SimulationResults, charts: Map<string, string>): string[] {
  const lines: string[] = [];
  const strategies = ['oracle', ...sim.strategies.map((s) => s.id)];
  const scenarioNames = sim.scenarios.map((s) => s.title);
  charts.set(
    'sim-p99-vs-oracle.svg',
    ratioHeatmap(
      'p99 latency ÷ oracle, 80% utilisation (simulation)',
      scenarioNames,
      strategies.slice(1).map((id) => label(sim, id)),
      (i, j) => {
        const sc = sim.scenarios[i]!;
        const r = run(sc, strategies[j + 1]!, 0.8);
        const o = run(sc, 'oracle', 0.8);
        return r && o ? r.latency.p99 / o.latency.p99 : null;
      },
    ),
  );
  lines.push('## Simulation', '');
  lines.push(
    `Discrete-event simulation, seed ${sim.settings.seed}: ${sim.settings.durationMs / 1000} s of simulated arrivals per run (the first ${sim.settings.warmupMs / 1000} s not measured), every scenario at ${sim.settings.utilisations.map((u) => `${u * 100}%`).join(', ')} utilisation, ${sim.scenarios.reduce((n, s) => n + s.runs.length, 0)} runs in ${fmt(sim.wallSeconds)} s of wall time. Command: \`${sim.command}\`.`,
    '',
  );
  lines.push(`![p99 relative to the oracle, every scenario and strategy](${CHART_DIR}/sim-p99-vs-oracle.svg)`, '');
  lines.push(...strategyNotes(sim), '');
  lines.push('### Winner per scenario (lowest p99 among strategies with the lowest error rate, ±0.5 point)', '');
  const rows: Row[] = sim.scenarios.map((sc) => {
    const row: Row = { Scenario: sc.title };
    for (const u of sim.settings.utilisations) {
      const w = winner(sc, u);
      const o = run(sc, 'oracle', u);
      row[`${u * 100}%`] =
        w && o ? `${label(sim, w.strategy)} (${fmt(w.latency.p99)} ms, ${times(w.latency.p99 / o.latency.p99)} oracle)` : '—';
    }
    return row;
  });
  lines.push(markdownTable(rows), '');

  for (const sc of sim.scenarios) {
    lines.push(`### ${sc.title}`, '', sc.description, '', WHY[sc.name] ?? '', '');
    const oracle80 = run(sc, 'oracle', 0.8);
    const hasCache = sc.runs.some((r) => r.cacheHitRate !== null);
    const hasAdapt = sc.runs.some((r) => r.adaptAfterCrashMs !== null);
    const hasSlowdown = sc.runs.some((r) => r.adaptAfterSlowdownMs !== null);
    const watch = sc.watch;
    const tableRows: Row[] = [];
    for (const id of strategies) {
      const r = run(sc, id, 0.8);
      if (!r) continue;
      const row: Row = {
        'Strategy (80%)': label(sim, id),
        'p50 ms': r.latency.p50,
        'p90 ms': r.latency.p90,
        'p99 ms': r.latency.p99,
        'p99.9 ms': r.latency.p999,
        'p99 ÷ oracle': oracle80 ? times(r.latency.p99 / oracle80.latency.p99) : '—',
        'req/s': Math.round(r.throughput),
        errors: pct(r.errorRate),
      };
      if (watch !== null) row[`${sc.servers[watch]} share`] = pct(r.share[watch]!);
      else row['busiest server'] = pct(Math.max(...r.share));
      if (hasCache) row['cache hits'] = r.cacheHitRate === null ? '—' : pct(r.cacheHitRate);
      if (hasAdapt) {
        row['adapt after crash ms'] = adaptMs(r.adaptAfterCrashMs);
        row['adapt after return ms'] = adaptMs(r.adaptAfterReturnMs);
      }
      if (hasSlowdown) row['adapt after slowdown ms'] = adaptMs(r.adaptAfterSlowdownMs);
      for (const u of sim.settings.utilisations.filter((x) => x !== 0.8)) {
        const other = run(sc, id, u);
        row[`p99 @${u * 100}%`] = other ? fmt(other.latency.p99) : '—';
      }
      tableRows.push(row);
    }
    lines.push(markdownTable(tableRows), '');
    const runs80 = sc.runs.filter((r) => r.utilisation === 0.8);
    const ordered = [...runs80].sort((a, b) =>
      a.strategy === 'oracle' ? -1 : b.strategy === 'oracle' ? 1 : a.latency.p99 - b.latency.p99,
    );
    const latencyFile = `sim-${sc.name}-latency.svg`;
    const shareFile = `sim-${sc.name}-share.svg`;
    charts.set(
      latencyFile,
      latencyChart(
        `${sc.title}: latency at 80% utilisation`,
        ordered.map((r) => ({ name: label(sim, r.strategy), ...r.latency, reference: r.strategy === 'oracle' })),
      ),
    );
    charts.set(
      shareFile,
      shareChart(
        `${sc.title}: share of requests per server at 80%`,
        sc.servers,
        ordered.map((r) => ({ name: label(sim, r.strategy), share: r.share })),
        watch ?? undefined,
      ),
    );
    lines.push(`![${sc.title}: latency percentiles](${CHART_DIR}/${latencyFile})`, '');
    lines.push(`![${sc.title}: share per server](${CHART_DIR}/${shareFile})`, '');
  }
  return lines;
}

/** Headline findings computed from the figures, so they cannot drift from the tables. */
function headlines(results: BalancingResults): string[] {
  const lines: string[] = [];
  const sim = results.simulation;
  if (sim) lines.push(...simHeadlines(sim));
  if (isCurrentLive(results.live)) lines.push(...liveHeadlines(results.live));
  return lines;
}

function simHeadlines(sim: SimulationResults): string[] {
  const lines: string[] = [];
  const cells = sim.scenarios.length * sim.settings.utilisations.length;
  const wins = new Map<string, number>();
  for (const sc of sim.scenarios) {
    for (const u of sim.settings.utilisations) {
      const w = winner(sc, u);
      if (w) wins.set(w.strategy, (wins.get(w.strategy) ?? 0) + 1);
    }
  }
  // Worst p99 ÷ oracle over the scenarios where the oracle is the latency reference.
  const worst = (id: string): { ratio: number; where: string } => {
    let ratio = 0;
    let where = '';
    for (const sc of sim.scenarios) {
      if (sc.name === 'cache-affinity' || sc.name === 'failing-server') continue;
      for (const u of sim.settings.utilisations) {
        const r = run(sc, id, u);
        const o = run(sc, 'oracle', u);
        if (r && o && r.latency.p99 / o.latency.p99 > ratio) {
          ratio = r.latency.p99 / o.latency.p99;
          where = `${sc.title}, ${u * 100}%`;
        }
      }
    }
    return { ratio, where };
  };
  const ratio80 = (scenario: string, id: string): number => {
    const sc = sim.scenarios.find((s) => s.name === scenario);
    const r = sc && run(sc, id, 0.8);
    const o = sc && run(sc, 'oracle', 0.8);
    return r && o ? r.latency.p99 / o.latency.p99 : Number.NaN;
  };
  const ranked = [...wins.entries()].sort((a, b) => b[1] - a[1]);
  if (ranked[0]) {
    const [top, n] = ranked[0];
    const w = worst(top);
    const rest = ranked.slice(1).map(([id, k]) => `${label(sim, id)} ${k}`);
    lines.push(
      `- **${capitalise(label(sim, top))}** has the lowest p99 in ${n} of ${cells} scenario × utilisation cells${rest.length > 0 ? ` (then ${rest.join(', ')})` : ''}, and its p99 is never more than ${times(w.ratio)} the oracle's (${w.where}).${top === 'least-connections' ? ' A full scan of in-flight counts is nearly as good as perfect knowledge.' : ''}`,
    );
  }
  const p2c = worst('p2c');
  const ewma = worst('peak-ewma');
  const slow = sim.scenarios.find((s) => s.name === 'slow-server');
  const slowWinner = slow && winner(slow, 0.8);
  lines.push(
    `- **P2C** and **peak EWMA** compare two random endpoints (constant cost per pick) and stay within ${times(p2c.ratio)} (${p2c.where}) and ${times(ewma.ratio)} (${ewma.where}) of the oracle in every load-balancing scenario.${
      slowWinner?.strategy === 'peak-ewma'
        ? ` With one server 5× slower, peak EWMA is the best strategy of all (${times(ratio80('slow-server', 'peak-ewma'))} the oracle at 80%): it sees latency, not only queue length.`
        : ''
    }`,
  );
  const rrSlow = ratio80('slow-server', 'round-robin');
  const rrHetero = ratio80('heterogeneous', 'round-robin');
  lines.push(
    `- **Round robin and random** are close to the oracle on identical servers at 80% (${times(ratio80('homogeneous', 'round-robin'))} and ${times(ratio80('homogeneous', 'random'))}) but collapse when one server is slow (${times(rrSlow)} the oracle's p99 at 80%) or capacities differ and are not weighted (${times(rrHetero)}); weighted round robin fixes the second case (${times(ratio80('heterogeneous', 'weighted-round-robin'))}) but not the first. Stalls and heavy-tailed service times also hurt them (${times(ratio80('stalls', 'round-robin'))} and ${times(ratio80('heavy-tail', 'round-robin'))}).`,
  );
  const cache = sim.scenarios.find((s) => s.name === 'cache-affinity');
  if (cache) {
    const hit = (id: string): number => run(cache, id, 0.8)?.cacheHitRate ?? Number.NaN;
    const hashes = sim.strategies.filter((s) => s.id.startsWith('hash'));
    if (hashes.length > 0) {
      lines.push(
        `- **Hash affinity** wins where servers cache: at 80%, ${hashes.map((h) => `${h.label} hits ${pct(hit(h.id))} (p99 ${fmt(run(cache, h.id, 0.8)?.latency.p99)} ms)`).join(', ')}, against ${pct(hit('p2c'))} for P2C (p99 ${fmt(run(cache, 'p2c', 0.8)?.latency.p99)} ms). Elsewhere it inherits the hash's imbalance and cannot avoid a slow server (ring: ${times(ratio80('slow-server', 'hash-ring'))} the oracle)${
          ratio80('slow-server', 'hash-bounded') <= 3
            ? `; bounded load can (${times(ratio80('slow-server', 'hash-bounded'))})`
            : `, nor can bounded load (${times(ratio80('slow-server', 'hash-bounded'))})`
        }.`,
      );
    }
  }
  const dyn = sim.strategies.find((s) => s.id === 'dynamic');
  if (dyn) {
    const homo50 = sim.scenarios.find((s) => s.name === 'homogeneous');
    const at = (u: number): number => {
      const r = homo50 && run(homo50, 'dynamic', u);
      const o = homo50 && run(homo50, 'oracle', u);
      return r && o ? r.latency.p99 / o.latency.p99 : Number.NaN;
    };
    lines.push(
      `- **Dynamic** (weights recomputed once a second from reported load, error rate and latency): on identical servers its p99 is ${times(at(0.5))} the oracle's at 50%, ${times(at(0.8))} at 80% and ${times(at(0.95))} at 95%; worst case ${times(worst('dynamic').ratio)} (${worst('dynamic').where}).`,
    );
  }
  const failing = sim.scenarios.filter((s) => s.name === 'failing-server' || s.name === 'crash-return');
  const packageErrors = failing.flatMap((sc) =>
    sc.runs.filter((r) => r.strategy !== 'oracle' && r.utilisation === 0.8).map((r) => r.errorRate),
  );
  const blackHole = sim.scenarios
    .find((s) => s.name === 'failing-server')
    ?.runs.find((r) => r.strategy === 'oracle' && r.utilisation === 0.8);
  if (packageErrors.length > 0 && blackHole) {
    lines.push(
      `- **Failures**: outlier detection, shared by every strategy, keeps errors at or below ${pct(Math.max(...packageErrors))} at 80% when a server fails half its requests or crashes, against ${pct(blackHole.errorRate)} for the oracle, which ignores errors and sends the failing server ${pct(blackHole.share[0] ?? Number.NaN)} of the traffic (it looks fast: the black hole).`,
    );
  }
  return lines;
}

/** The report and its charts (file name → SVG text). */
export function buildReport(results: BalancingResults): { markdown: string; charts: Map<string, string> } {
  const charts = new Map<string, string>();
  const lines: string[] = [
    '# Balancing algorithms compared',
    '',
    "Every strategy of `@ballast/load-balancer` on the same workloads: a seeded discrete-event simulation that drives the package's real code on a virtual clock, against a full-scan least-loaded oracle, and live traffic through Ballast's proxy, the Node proxies users know (@fastify/http-proxy, http-proxy), nginx and HAProxy on loopback.",
    '',
    'Reproduce: `npm run bench:balancing` (simulation, a few minutes) and `npm run bench:balancing -- --live` (live traffic, about 20 minutes; installs nginx, HAProxy and wrk from Debian packages when missing). Each replaces only its own half of `balancing.json` and keeps the other; this report and its charts are rebuilt from both.',
    '',
    '## Headline findings',
    '',
    ...headlines(results),
    '',
    '### Goals',
    '',
  ];
  const g = goals(results);
  lines.push(
    g.length === 0
      ? 'No goal could be checked: run both commands.'
      : markdownTable(g.map((x) => ({ Goal: x.goal, Measured: x.measured, Met: x.met === null ? 'reported' : x.met ? 'yes' : '**no**' }))),
    '',
  );
  if (results.simulation) lines.push(...simSection(results.simulation, charts));
  if (isCurrentLive(results.live)) lines.push(...liveSection(results.live, charts));
  else lines.push('## Live traffic', '', 'Not run yet with this version of the harness: `npm run bench:balancing -- --live`.', '');
  lines.push(...methodNotes(results));
  return { markdown: `${lines.join('\n')}\n`, charts };
}

function methodNotes(results: BalancingResults): string[] {
  const sim = results.simulation;
  return [
    '## Method',
    '',
    `- **Servers** have a concurrency capacity (slots) and an unbounded FIFO queue. **Clients time out**: a request not answered within ${sim?.settings.clientTimeoutMs !== undefined ? `${fmt(sim.settings.clientTimeoutMs)} ms` : 'the client timeout'} is given up, counted as an error (a timeout) and recorded at that latency, and the balancer is told it was cancelled (neither a success nor a failure); the server still finishes the work, as a real one does. An overloaded server's backlog still grows for the whole run, but what clients see is bounded by their timeout, so the percentiles and ratios do not grow with the run's length.`,
    '- **Utilisation** is offered load ÷ nominal capacity (Σ slots ÷ mean service time). Arrivals are open-loop: Poisson, or bursts in the bursty scenario. Every strategy sees the same arrivals, keys and service-time draws (common random numbers); the balancer has its own seeded random stream.',
    '- **Latency** percentiles are over successful requests, from arrival to completion, and timed-out ones at the timeout, in a log-linear histogram (`Histogram` from @ballast/common, within 1.6%). Errors are counted separately. Throughput counts measured requests that succeeded before arrivals stopped, per second, so a backlog left at the end lowers it. Share is the share of requests each server was sent.',
    "- **Load reports**: every completion reports the server's utilisation (busy slots averaged over about a second) through `done({ load })`, which the dynamic strategy uses; live backends send the same figure in `x-ballast-load`.",
    `- **The package** runs as users run it: \`new LoadBalancer({ endpoints, strategy, clock, random, ...${JSON.stringify(sim?.settings.balancerOptions ?? {})} })\`, each strategy with its default options, \`pick({ key })\`, \`start()\`, \`done({ ok, latencyMs, load })\`. Outlier detection is on (the default); its base ejection time is shortened from 30 s to 2 s so a crashed server's return falls within a 20-second run.`,
    "- **The oracle** scans every server on every request and picks the lowest (outstanding + 1) × mean service time ÷ slots, knowing each server's true speed and whether it is up. It does not know the future (a stall about to start, which request will be long) and ignores errors, so it is the reference for latency, not for error rate.",
    '- **Hash affinity** routes on the request key (uniform over 2,000 keys); in scenarios without caches it is shown for completeness: it balances only as well as the hash spreads keys.',
  ];
}
