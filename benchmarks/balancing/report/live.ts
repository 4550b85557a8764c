/**
 * The live half of the balancing report: what each proxy costs, and where each balancer
 * puts requests. Every figure is a median over repeated, interleaved runs, shown with its
 * confidence interval; "lower than" is said only where the intervals do not overlap.
 */
import { median } from '../../lib/measure.ts';
import { fmt, markdownTable, type Row } from '../../lib/report.ts';
import type { LiveResults, LiveRun, LiveScenarioResult, ProxyCostRun } from '../results.ts';
import { compare, type Interval } from '../stats.ts';
import { latencyChart, shareChart } from './svg.ts';

const CHART_DIR = 'balancing';

/** A live result this report can read (older formats are kept in the JSON but not shown). */
export function isCurrentLive(live: LiveResults | null | undefined): live is LiveResults {
  return live !== null && live !== undefined && (live as { format?: number }).format === 2;
}

/** `median [low–high]`. */
export function interval(i: Interval | undefined, digits = 3): string {
  if (!i || Number.isNaN(i.median)) return '—';
  return i.n > 1 ? `${fmt(i.median, digits)} [${fmt(i.low, digits)}–${fmt(i.high, digits)}]` : fmt(i.median, digits);
}

/** How `a` compares with `b`: `lower` or `higher` only where the intervals separate. */
function verdict(a: Interval, b: Interval): string {
  const c = compare(a, b);
  return c === 'overlap' ? 'intervals overlap' : c;
}

export interface LiveGoal {
  goal: string;
  measured: string;
  met: boolean | null;
}

/** The like-for-like pairs: the same algorithm in each balancer. */
export const LIKE_FOR_LIKE = [
  { algorithm: 'round robin', ballast: 'round-robin', nginx: 'nginx round robin', haproxy: 'HAProxy roundrobin' },
  { algorithm: 'least connections', ballast: 'least-connections', nginx: 'nginx least_conn', haproxy: 'HAProxy leastconn' },
  { algorithm: 'best of two random choices', ballast: 'p2c', nginx: 'nginx random two least_conn', haproxy: 'HAProxy random(2)' },
] as const;

/** Runs of `netProxy`, Ballast's data path on node:net, are labelled with its name. */
const isNet = (r: { balancer?: string; proxy?: string }): boolean => (r.balancer ?? r.proxy ?? '').includes('netProxy');
const ballastRun = (sc: LiveScenarioResult, strategy: string): LiveRun | undefined =>
  sc.runs.find((r) => r.kind === 'ballast' && r.strategy === strategy && !isNet(r));
const netRun = (sc: LiveScenarioResult, strategy: string): LiveRun | undefined =>
  sc.runs.find((r) => r.kind === 'ballast' && r.strategy === strategy && isNet(r));
const byName = (sc: LiveScenarioResult, name: string): LiveRun | undefined => sc.runs.find((r) => r.balancer === name);

function best(runs: LiveRun[]): LiveRun | undefined {
  return [...runs].sort((a, b) => a.p99.median - b.p99.median)[0];
}

function costOf(live: LiveResults): {
  ballast?: ProxyCostRun;
  net?: ProxyCostRun;
  hono?: ProxyCostRun;
  peer?: ProxyCostRun;
  nginx?: ProxyCostRun;
  reference?: ProxyCostRun;
  server?: ProxyCostRun;
} {
  const runs = live.proxyCost?.runs ?? [];
  const peers = runs.filter((r) => r.kind === 'node-peer').sort((a, b) => b.requestsPerCpuSecond.median - a.requestsPerCpuSecond.median);
  return {
    ballast: runs.find((r) => r.kind === 'ballast' && !r.proxy.includes('Hono') && !isNet(r)),
    net: runs.find((r) => r.kind === 'ballast' && isNet(r)),
    hono: runs.find((r) => r.kind === 'ballast' && r.proxy.includes('Hono')),
    peer: peers[0],
    nginx: runs.find((r) => r.kind === 'nginx'),
    reference: runs.find((r) => r.kind === 'reference' && r.proxy.includes('undici')),
    server: runs.find((r) => r.kind === 'reference' && r.proxy.includes('node:http')),
  };
}

export function liveGoals(live: LiveResults): LiveGoal[] {
  const out: LiveGoal[] = [];
  const { ballast, net, peer, nginx } = costOf(live);
  for (const [name, run] of [
    ["Ballast's Node proxy", ballast],
    ["Ballast's netProxy", net],
  ] as const) {
    if (!run) continue;
    if (peer) {
      out.push({
        goal: `Live, proxy cost: ${name} serves at least as many requests per CPU-second as the fastest Node peer`,
        measured: `${interval(run.requestsPerCpuSecond)} vs ${peer.proxy} ${interval(peer.requestsPerCpuSecond)}: Ballast ${verdict(run.requestsPerCpuSecond, peer.requestsPerCpuSecond)}`,
        met: run.requestsPerCpuSecond.median >= peer.requestsPerCpuSecond.median,
      });
    }
    if (nginx) {
      const ratio = run.requestsPerCpuSecond.median / nginx.requestsPerCpuSecond.median;
      out.push({
        goal: `Live, proxy cost: ${name} at least 0.3× nginx in requests per CPU-second`,
        measured: `${fmt(run.requestsPerCpuSecond.median)} ÷ ${fmt(nginx.requestsPerCpuSecond.median)} = ${fmt(ratio, 2)}`,
        met: ratio >= 0.3,
      });
    }
    // Met only where the rate reached was near half the capacity: a lighter load would flatter the tail.
    const share = shareOfCapacity(run);
    out.push({
      goal: `Live, proxy cost: ${name} adds at most 150 µs at p50 and 1 ms at p99 at half its capacity`,
      measured: `p50 +${interval(run.addedP50Us)} µs, p99 +${interval(run.addedP99Us)} µs at ${rateText(run)}`,
      met: run.addedP50Us.median <= 150 && run.addedP99Us.median <= 1000 && (share === undefined || share >= 0.45),
    });
  }
  const slow = live.scenarios.find((s) => s.name === 'slow-server');
  for (const [who, lc] of [
    ['Ballast least connections', slow && ballastRun(slow, 'least-connections')],
    ['Ballast least connections (netProxy)', slow && netRun(slow, 'least-connections')],
  ] as const) {
    if (!slow || !lc) continue;
    for (const name of ['nginx least_conn', 'HAProxy leastconn']) {
      const peerRun = byName(slow, name);
      if (!peerRun) continue;
      out.push({
        goal: `Live, one server 5× slower, like for like: ${who} p99 lower than ${name} (intervals separate)`,
        measured: `${interval(lc.p99)} ms vs ${interval(peerRun.p99)} ms: ${verdict(lc.p99, peerRun.p99)}`,
        met: compare(lc.p99, peerRun.p99) === 'lower',
      });
    }
  }
  if (slow) {
    const top = best(slow.runs.filter((r) => r.kind === 'ballast'));
    for (const name of ['nginx least_conn', 'HAProxy leastconn']) {
      const peerRun = byName(slow, name);
      if (!top || !peerRun) continue;
      out.push({
        goal: `Live, one server 5× slower, best of Ballast's strategies (${top.balancer}, default options) p99 lower than ${name}`,
        measured: `${interval(top.p99)} ms vs ${interval(peerRun.p99)} ms: ${verdict(top.p99, peerRun.p99)}`,
        met: compare(top.p99, peerRun.p99) === 'lower',
      });
    }
  }
  return out;
}

/** The latency run's rate as a share of the proxy's capacity (0.5 when it reached half), where the run recorded the capacity. */
function shareOfCapacity(run: ProxyCostRun): number | undefined {
  const halves = run.samples.map((x) => x.halfCapacityPerSec).filter((x): x is number => x !== undefined && x > 0);
  if (halves.length === 0) return undefined;
  return run.latencyRatePerSec.median / (2 * median(halves));
}

/** The share as a percentage for a table cell, `–` where the run did not record the capacity. */
export function capacityShareCell(run: ProxyCostRun): string {
  const share = shareOfCapacity(run);
  return share === undefined ? '–' : fmt(share * 100);
}

/** `2,939 requests/s (47% of capacity)`. */
function rateText(run: ProxyCostRun): string {
  const share = shareOfCapacity(run);
  return `${fmt(run.latencyRatePerSec.median)} requests/s${share === undefined ? '' : ` (${fmt(share * 100)}% of its capacity)`}`;
}

export function liveHeadlines(live: LiveResults): string[] {
  const lines: string[] = [];
  const { ballast, net, hono, peer, nginx, reference, server } = costOf(live);
  if (ballast && peer && nginx) {
    const ofNginx = (run: ProxyCostRun): string => `${fmt(run.requestsPerCpuSecond.median / nginx.requestsPerCpuSecond.median, 2)}× nginx`;
    lines.push(
      `- **Proxy cost** (backends that answer at once, requests per CPU-second of the proxy process, median [${pctConfidence(ballast.requestsPerCpuSecond)} interval] of ${ballast.requestsPerCpuSecond.n} runs): Ballast's Node proxy ${interval(ballast.requestsPerCpuSecond)}, the fastest Node peer (${peer.proxy}) ${interval(peer.requestsPerCpuSecond)}, nginx ${interval(nginx.requestsPerCpuSecond)}: ${fmt(ballast.requestsPerCpuSecond.median / nginx.requestsPerCpuSecond.median, 2)}× nginx${net ? `; Ballast's netProxy (HTTP/1.1 on node:net) ${interval(net.requestsPerCpuSecond)}, ${ofNginx(net)}` : ''}${hono ? `; the Hono path ${interval(hono.requestsPerCpuSecond)}` : ''}.${reference ? ` A bare undici pass-through with no balancing, headers or error handling serves ${interval(reference.requestsPerCpuSecond)} (${ofNginx(reference)}).` : ''}${server ? ` A node:http server answering by itself, without calling anything (the floor under every proxy on node:http), serves ${interval(server.requestsPerCpuSecond)} (${ofNginx(server)}).` : ''}`,
    );
    lines.push(
      `- **Added latency** over calling a backend directly, at half the proxy's capacity: Ballast's Node proxy p50 +${interval(ballast.addedP50Us)} µs, p99 +${interval(ballast.addedP99Us)} µs at ${rateText(ballast)}${net ? `; netProxy p50 +${interval(net.addedP50Us)} µs, p99 +${interval(net.addedP99Us)} µs at ${rateText(net)}` : ''}${nginx ? `; nginx p50 +${interval(nginx.addedP50Us)} µs, p99 +${interval(nginx.addedP99Us)} µs at ${rateText(nginx)}` : ''}.`,
    );
  }
  for (const sc of live.scenarios) {
    const pairs = LIKE_FOR_LIKE.map((pair) => {
      const b = ballastRun(sc, pair.ballast);
      const n = byName(sc, pair.nginx);
      const h = byName(sc, pair.haproxy);
      if (!b || !n || !h) return undefined;
      const nb = netRun(sc, pair.ballast);
      const viaNet = nb
        ? ` (netProxy ${interval(nb.p99)} ms: ${verdict(nb.p99, n.p99)} vs nginx, ${verdict(nb.p99, h.p99)} vs HAProxy)`
        : '';
      return `${pair.algorithm}: Ballast ${interval(b.p99)} ms vs nginx ${interval(n.p99)} (${verdict(b.p99, n.p99)}) and HAProxy ${interval(h.p99)} (${verdict(b.p99, h.p99)})${viaNet}`;
    }).filter((x) => x !== undefined);
    const top = best(sc.runs.filter((r) => r.kind === 'ballast'));
    const topPeer = best(sc.runs.filter((r) => r.kind === 'nginx' || r.kind === 'haproxy'));
    lines.push(
      `- **Live, ${sc.title.toLowerCase()}**, p99 median [interval], like for like: ${pairs.join('; ')}.${
        top && topPeer
          ? ` Best of each (every configuration at its defaults): ${top.balancer} ${interval(top.p99)} ms vs ${topPeer.balancer} ${interval(topPeer.p99)} ms (${verdict(top.p99, topPeer.p99)}).`
          : ''
      }`,
    );
  }
  return lines;
}

function pctConfidence(i: Interval): string {
  return `${fmt(i.confidence * 100, 3)}%`;
}

export function liveSection(live: LiveResults, charts: Map<string, string>): string[] {
  const s = live.settings;
  const lines: string[] = ['## Live traffic', ''];
  lines.push(
    `Real processes on 127.0.0.1, one balancer at a time. Every configuration ran ${s.repeats} times, interleaved: each round runs every configuration once, and each round starts one configuration later, so a stretch of load on the machine falls on all of them alike. Figures are medians over the runs with a distribution-free interval for the median, [low–high] (order statistics; with ${s.repeats} runs the interval is min–max at ${pctFromRuns(s.repeats)} confidence). A difference is called "lower" or "higher" only where the two intervals do not overlap. Machine: ${live.machine.cpus} × ${live.machine.cpuModel}, shared with other work: load average ${fmt(live.loadAverage.before, 2)} before and ${fmt(live.loadAverage.after, 2)} after the run, which took ${fmt(live.wallSeconds / 60, 2)} minutes. Versions: ${Object.entries(
      s.versions,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}. Command: \`${live.command}\`.`,
    '',
  );
  if (live.proxyCost) lines.push(...costSection(live), '');
  lines.push(
    `### Balancing live`,
    '',
    `${live.scenarios[0]?.servers.length ?? 0} backends (Node HTTP servers, ${s.concurrency} concurrent requests each, exponential service time, mean ${s.meanMs} ms, FIFO queue), an open-loop load generator (${s.arrivals} arrivals at ${fmt(s.utilisation * 100)}% of nominal capacity, latency from each request's scheduled time, so no coordinated omission; requests unanswered after ${s.timeoutMs / 1000} s count as errors at their waiting time), and in front: Ballast's Node proxy (\`nodeProxy\`, one process) with several strategies${hasNetRuns(live) ? ", Ballast's `netProxy` (HTTP/1.1 on node:net) with least connections and P2C" : ''}, nginx and HAProxy (one worker each) with each of their algorithms, every one at its default options. Each run: ${live.scenarios.map((sc) => `${sc.durationMs / 1000} s (${sc.title.toLowerCase()})`).join(', ')}, the first ${s.warmupMs / 1000} s not measured, after 1 s of \`wrk\` requests through the proxy that the backends answer at once (open connections and, for Node, a compiled hot path, before the measured traffic starts).`,
    '',
  );
  for (const sc of live.scenarios) lines.push(...scenarioSection(sc, charts));
  return lines;
}

function hasNetRuns(live: LiveResults): boolean {
  return live.scenarios.some((sc) => sc.runs.some(isNet));
}

function pctFromRuns(n: number): string {
  return `${fmt((1 - 2 / 2 ** n) * 100, 4)}%`;
}

function costSection(live: LiveResults): string[] {
  const cost = live.proxyCost!;
  const c = cost.settings;
  const lines = [
    '### Proxy cost',
    '',
    `${c.backends} backends that answer at once; each proxy round-robins over them. Capacity: \`wrk\` with ${c.connections} keep-alive connections for ${c.closedLoopMs / 1000} s (after 1 s of warm-up), CPU of the proxy process from \`/proc/<pid>/task/*/schedstat\`, so time spent waiting for a core is not counted. Added latency: an open loop at half the proxy's capacity (the lower of requests per CPU-second and per second, halved; capped at ${fmt(c.latencyRateCapPerSec)} requests/s each way, the most the load generator sends reliably here) for ${c.latencyMs / 1000} s, through the proxy and straight to the backends at the same rate at the same time (one request each way per slot, so a stall of the machine falls on both); the difference of the percentiles. The generator sleeps between 1 ms ticks and sends the slots that came due on raw keep-alive connections (it never spins, which would take a core from the proxy and the backends); "% of capacity" is the rate it reached over the capacity measured just before. Two references, not contenders: the bare undici pass-through (no balancing state, no header handling, no timeouts or errors handled) and a node:http server answering by itself (one of the backends, no proxying at all: the least any proxy on node:http can cost).`,
    '',
  ];
  const rows: Row[] = cost.runs.map((r) => ({
    Proxy: r.proxy,
    'requests per CPU-s': interval(r.requestsPerCpuSecond),
    'requests/s (wall)': interval(r.requestsPerSecond),
    'added p50 µs': interval(r.addedP50Us),
    'added p99 µs': interval(r.addedP99Us),
    'at requests/s': fmt(r.latencyRatePerSec.median),
    '% of capacity': capacityShareCell(r),
    'direct p50 ms': fmt(median(r.samples.map((x) => x.direct.p50))),
    errors: r.samples.reduce((n, x) => n + x.errors, 0),
  }));
  lines.push(markdownTable(rows));
  return lines;
}

function scenarioSection(sc: LiveScenarioResult, charts: Map<string, string>): string[] {
  const lines: string[] = [`#### ${sc.title}`, '', `${sc.description} ${fmt(sc.ratePerSec)} requests/s.`, ''];
  const ordered = [...sc.runs].sort((a, b) => a.p99.median - b.p99.median);
  const rows: Row[] = ordered.map((r) => {
    const row: Row = {
      Balancer: r.balancer,
      'p50 ms': interval(r.p50),
      'p99 ms': interval(r.p99),
      'p99.9 ms': interval(r.p999),
      errors: interval({
        ...r.errorRate,
        median: r.errorRate.median * 100,
        low: r.errorRate.low * 100,
        high: r.errorRate.high * 100,
      }).replace(/(\d)( |$)/, '$1%$2'),
    };
    if (sc.watch !== null) row[`${sc.servers[sc.watch]} share`] = `${fmt((r.share[sc.watch] ?? 0) * 100)}%`;
    row['req per CPU-s'] = interval(r.requestsPerCpuSecond);
    row.runs = r.samples.length;
    return row;
  });
  lines.push(markdownTable(rows), '');
  lines.push('Like for like (p99 ms, median [interval]; the verdict is Ballast against each peer):', '');
  lines.push(
    markdownTable(
      LIKE_FOR_LIKE.map((pair) => {
        const b = ballastRun(sc, pair.ballast);
        const nb = netRun(sc, pair.ballast);
        const n = byName(sc, pair.nginx);
        const h = byName(sc, pair.haproxy);
        const row: Row = {
          Algorithm: pair.algorithm,
          Ballast: interval(b?.p99),
          nginx: interval(n?.p99),
          'vs nginx': b && n ? verdict(b.p99, n.p99) : '—',
          HAProxy: interval(h?.p99),
          'vs HAProxy': b && h ? verdict(b.p99, h.p99) : '—',
        };
        if (sc.runs.some(isNet)) {
          row['Ballast netProxy'] = interval(nb?.p99);
          row['netProxy vs nginx, HAProxy'] = nb && n && h ? `${verdict(nb.p99, n.p99)}, ${verdict(nb.p99, h.p99)}` : '—';
        }
        return row;
      }),
    ),
    '',
  );
  const top = best(sc.runs.filter((r) => r.kind === 'ballast'));
  const topPeer = best(sc.runs.filter((r) => r.kind !== 'ballast'));
  if (top && topPeer) {
    lines.push(
      `Best of each (lowest median p99, default options): ${top.balancer} ${interval(top.p99)} ms, ${topPeer.balancer} ${interval(topPeer.p99)} ms: ${verdict(top.p99, topPeer.p99)}.`,
      '',
    );
  }
  if (sc.runs.some((r) => r.samples.some((x) => x.timeouts > 0))) {
    lines.push(
      `A request that timed out never says which backend held it, so the share columns count answered requests only; the timed-out ones (almost all queued on ${sc.watch === null ? 'an overloaded backend' : sc.servers[sc.watch]}) show in grey in the share chart and count as errors.`,
      '',
    );
  }
  const latencyFile = `live-${sc.name}-latency.svg`;
  const shareFile = `live-${sc.name}-share.svg`;
  charts.set(
    latencyFile,
    latencyChart(
      `Live, ${sc.title}: latency (medians of ${sc.runs[0]?.samples.length ?? 0} runs)`,
      ordered.map((r) => ({ name: r.balancer, ...r.latency })),
    ),
  );
  charts.set(
    shareFile,
    shareChart(
      `Live, ${sc.title}: share of requests per backend`,
      sc.servers,
      ordered.map((r) => ({ name: r.balancer, share: r.share })),
      sc.watch ?? undefined,
      'timed out (backend unknown)',
    ),
  );
  lines.push(
    `![Live ${sc.title}: latency](${CHART_DIR}/${latencyFile})`,
    '',
    `![Live ${sc.title}: share per backend](${CHART_DIR}/${shareFile})`,
    '',
  );
  return lines;
}
