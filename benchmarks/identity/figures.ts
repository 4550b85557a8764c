/**
 * The identity benchmark's figures against its goals, from benchmarks/results/identity.json
 * (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable } from '../lib/report.ts';

interface Decision {
  decision: string;
  'p50 µs': number;
  'p99 µs': number;
  'store lookups': number;
  calls: number;
}
interface Propagation {
  what: string;
  'p50 ms': number;
  'p99 ms': number;
  'max ms': number;
  samples: number;
}
interface Phase {
  phase: string;
  'p50 ms': number;
  'p99 ms': number;
  requests: number;
}
interface IdentityResults {
  machine: { cpus: number; cpuModel: string; node: string };
  quick: boolean;
  decision: Decision[];
  propagation: Propagation[];
  isolation: {
    rows: Phase[];
    p99Ratio: number;
    noisyStatuses: Record<string, number>;
    quietStatuses: Record<string, number>;
    /** API CPU per answer: a 429 over the rate, then GET /healthz. */
    cost?: Array<{ answer: string; 'API CPU µs each': number }>;
  };
  loadAverage: { before: number; after: number };
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = [
  'apps/identity/src',
  'apps/api/src/identity.ts',
  'apps/api/src/tenancy.ts',
  'apps/api/src/tenant-quota.ts',
  'apps/api/src/tenant-lanes.ts',
  'benchmarks/identity',
];

/** The goals of `npm run bench:identity`. */
const GOALS = {
  /** Edge-cache hit, p99 in µs. */
  hitP99Us: 50,
  /** Revocation on every server with pub/sub, p99 in ms. */
  revocationP99Ms: 2000,
  /** Revocation with every publish lost, and a new key anywhere: at most, in ms. */
  freshMs: 5000,
  /** The quiet tenant's p99 loaded over unloaded. */
  isolationRatio: 1.2,
};

const verdict = (met: boolean): string => (met ? 'met' : '**not met**');
const ms = (value: number): string => (value >= 1000 ? `${fmt(value / 1000, 3)} s` : `${fmt(value)} ms`);
const answers = (statuses: Record<string, number>): string =>
  Object.entries(statuses)
    .map(([status, n]) => `${fmt(n)} × ${status === '0' ? 'connection error' : status}`)
    .join(', ');

/** The cost of one refusal against the server's cheapest answer, when the results measured it. */
function refusalRow(cost: IdentityResults['isolation']['cost']): Array<{ what: string; figure: string; goal: string; verdict: string }> {
  const [refusal, healthz] = cost ?? [];
  if (refusal === undefined || healthz === undefined) return [];
  const us = (row: { 'API CPU µs each': number }): number => row['API CPU µs each'];
  return [
    {
      what: "A request over its tenant's rate, refused (429 before its body is read), 200 requests/s",
      figure: `**${fmt(us(refusal))} µs** of the API process's CPU each, ${fmt(us(refusal) / us(healthz), 2)}× its cheapest answer (\`GET /healthz\`, ${fmt(us(healthz))} µs)`,
      goal: 'as cheap as possible',
      verdict: '—',
    },
  ];
}

export default function figures(results: IdentityResults): Figures {
  const decision = (prefix: string): Decision[] => results.decision.filter((d) => d.decision.startsWith(prefix));
  const [hit] = decision('edge-cache hit');
  if (hit === undefined) throw new Error('identity results have no edge-cache hit decision');
  const refused = [...decision('malformed'), ...decision('missing header')];
  if (refused.length === 0) throw new Error('identity results have no malformed-key decisions');
  const refusedLookups = refused.reduce((n, d) => n + d['store lookups'], 0);
  const refusedCalls = refused.reduce((n, d) => n + d.calls, 0);
  const refusedP99 = refused.map((d) => d['p99 µs']);
  const propagation = (what: string, mode: string): Propagation => {
    const row = results.propagation.find((p) => p.what.startsWith(what) && p.what.endsWith(mode));
    if (row === undefined) throw new Error(`identity results have no propagation row "${what}…${mode}"`);
    return row;
  };
  const revoked = propagation('revocation', 'pub/sub');
  const revokedLost = propagation('revocation', '(poll only)');
  const created = propagation('new key', 'pub/sub');
  const createdLost = propagation('new key', '(poll only)');
  const [alone, loaded] = results.isolation.rows;
  if (alone === undefined || loaded === undefined) throw new Error('identity results have no isolation phases');
  const ratio = results.isolation.p99Ratio;
  const quietRefused = Object.entries(results.isolation.quietStatuses)
    .filter(([status]) => status !== '200')
    .reduce((n, [, count]) => n + count, 0);

  const met = {
    hit: hit['p99 µs'] <= GOALS.hitP99Us,
    refused: refusedLookups === 0,
    revoked: revoked['p99 ms'] <= GOALS.revocationP99Ms,
    revokedLost: revokedLost['max ms'] <= GOALS.freshMs,
    created: Math.max(created['max ms'], createdLost['max ms']) <= GOALS.freshMs,
    isolation: ratio <= GOALS.isolationRatio,
  };
  const rows = [
    {
      what: `Decision on an edge-cache hit (${hit.decision.replace(/^edge-cache hit \((.*)\)$/, '$1')}), in process`,
      figure: `p50 ${fmt(hit['p50 µs'], 2)} µs, **p99 ${fmt(hit['p99 µs'], 2)} µs**`,
      goal: `p99 ≤ ${GOALS.hitP99Us} µs`,
      verdict: verdict(met.hit),
    },
    {
      what: 'Malformed (wrong prefix, bad checksum, huge header), missing header',
      figure: `**${fmt(refusedLookups)} store lookups** in ${fmt(refusedCalls)} decisions; p99 ${fmt(Math.min(...refusedP99), 2)}–${fmt(Math.max(...refusedP99), 2)} µs`,
      goal: 'zero lookups',
      verdict: verdict(met.refused),
    },
    {
      what: 'Revocation refused on all 3 API-server processes after the management answer (pub/sub)',
      figure: `p50 ${ms(revoked['p50 ms'])}, **p99 ${ms(revoked['p99 ms'])}** (${fmt(revoked.samples / 3)} revocations × 3 servers)`,
      goal: `p99 ≤ ${fmt(GOALS.revocationP99Ms / 1000)} s`,
      verdict: verdict(met.revoked),
    },
    {
      what: 'The same with every publish lost (the edge caches never subscribe: the 1 s poll alone)',
      figure: `p50 ${ms(revokedLost['p50 ms'])}, **max ${ms(revokedLost['max ms'])}** (${fmt(revokedLost.samples / 3)} × 3)`,
      goal: `≤ ${fmt(GOALS.freshMs / 1000)} s`,
      verdict: verdict(met.revokedLost),
    },
    {
      what: 'New key usable on all 3 servers',
      figure: `max ${ms(created['max ms'])} (pub/sub), ${ms(createdLost['max ms'])} (publishes lost: the first use looks it up)`,
      goal: `≤ ${fmt(GOALS.freshMs / 1000)} s`,
      verdict: verdict(met.created),
    },
    {
      what: 'Tenant isolation: noisy tenant at 10× its quota, quiet tenant at half of its own',
      figure: `quiet tenant's p99 ${ms(loaded['p99 ms'])} loaded vs ${ms(alone['p99 ms'])} alone: **${fmt(ratio, 3)}×** (p50 ${ms(loaded['p50 ms'])} vs ${ms(alone['p50 ms'])}); noisy tenant ${answers(results.isolation.noisyStatuses)}; quiet tenant ${answers(results.isolation.quietStatuses)}${quietRefused === 0 ? ', none refused' : ''}`,
      goal: `p99 ≤ ${GOALS.isolationRatio}×`,
      verdict: verdict(met.isolation),
    },
    ...refusalRow(results.isolation.cost),
  ];
  const command = `npm run bench:identity${results.quick ? ' -- --quick' : ''}`;
  const { before, after } = results.loadAverage;
  return {
    goals: [
      `Figures from \`${command}\` on ${results.machine.cpus} cores (${results.machine.cpuModel}), Node ${results.machine.node.replace(/^v/, '')}, 1-minute load average ${fmt(before)} before and ${fmt(after)} after the run:`,
      '',
      markdownTable(
        rows.map((r) => ({ What: r.what, Figure: r.figure, Goal: r.goal, Met: r.verdict })),
        ['What', 'Figure', 'Goal', 'Met'],
      ),
    ].join('\n'),
    summary: summaryRow(
      `Identity: API-key decision, revocation across 3 API-server processes, tenant isolation (load average ${fmt(before)} before, ${fmt(after)} after)`,
      `edge-cache hit p99 ${fmt(hit['p99 µs'], 2)} µs (goal ≤ ${GOALS.hitP99Us} µs: ${verdict(met.hit)}), bad keys ${fmt(refusedLookups)} store lookups (${verdict(met.refused)}); revocation p99 ${ms(revoked['p99 ms'])} (goal ≤ ${fmt(GOALS.revocationP99Ms / 1000)} s: ${verdict(met.revoked)}), at most ${ms(revokedLost['max ms'])} with every publish lost (goal ≤ ${fmt(GOALS.freshMs / 1000)} s: ${verdict(met.revokedLost)}); a tenant at 10× its quota: the other's p99 ${fmt(ratio, 3)}× unloaded (goal ≤ ${GOALS.isolationRatio}×: ${verdict(met.isolation)})`,
      command,
    ),
  };
}
