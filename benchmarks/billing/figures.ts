/**
 * The usage metering and billing benchmark's figures against its goals, from
 * benchmarks/results/billing.json (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable } from '../lib/report.ts';

interface BillingResults {
  machine: { cpus: number; cpuModel: string; node: string };
  quick: boolean;
  loadAverage1mBefore: number;
  loadAverage1mAfter: number;
  shipping: { records: number; recordsPerSecond: number };
  delay: { recordsPerSecond: number; p50Ms: number; p99Ms: number };
  billingSql: { records: number; recordsPerMinute: number };
  billingJob: { records: number; recordsPerMinute: number; archiveBytesPerRecord: number };
  cpuSeparate: { jobs: number; ratio: number };
  cpuEmbedded: { requests: number; ratio: number };
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['apps/usage/src', 'apps/worker/src', 'benchmarks/billing'];

/** The goals of `npm run bench:billing`. */
const GOALS = {
  /** Job finish to visible in the store, p99, ms. */
  delayP99Ms: 10_000,
  /** Records priced and summed by the billing SQL per minute. */
  billingPerMinute: 10_000_000,
  /** CPU metered over all jobs of a process against the process's own CPU: |1 − ratio| at most. */
  cpuTolerance: 0.05,
};

const verdict = (met: boolean): string => (met ? 'met' : '**not met**');
/** `9.8 million`-style counts. */
const millions = (value: number): string => (value >= 1e6 ? `${fmt(value / 1e6, 3)} million` : fmt(Math.round(value)));
const ms = (value: number): string => (value >= 1000 ? `${fmt(value / 1000, 3)} s` : `${fmt(value)} ms`);

export default function figures(results: BillingResults): Figures {
  const { shipping, delay, billingSql, billingJob, cpuSeparate, cpuEmbedded } = results;
  const cpuMet = (ratio: number): boolean => Math.abs(1 - ratio) <= GOALS.cpuTolerance;
  const met = {
    delay: delay.p99Ms <= GOALS.delayP99Ms,
    billing: billingSql.recordsPerMinute >= GOALS.billingPerMinute,
    cpuSeparate: cpuMet(cpuSeparate.ratio),
    cpuEmbedded: cpuMet(cpuEmbedded.ratio),
  };
  const within = `within ${fmt(GOALS.cpuTolerance * 100)}%`;
  const rows = [
    {
      Figure: `records shipped per second, one shipper process (batches of 1,000, real PostgreSQL; ${fmt(shipping.records)} records)`,
      Value: fmt(Math.round(shipping.recordsPerSecond)),
      Goal: '—',
    },
    {
      Figure: `delay from job finish to visible in the store at ${fmt(delay.recordsPerSecond)} records/s, shipper defaults: p50 / p99`,
      Value: `${ms(delay.p50Ms)} / ${ms(delay.p99Ms)}`,
      Goal: `p99 ≤ ${fmt(GOALS.delayP99Ms / 1000)} s: ${verdict(met.delay)}`,
    },
    {
      Figure: `billing SQL (map: price each record; reduce: sum per tenant and period) in DuckDB over zstd Parquet, ${millions(billingSql.records)} generated records`,
      Value: `${millions(billingSql.recordsPerMinute)} records per minute`,
      Goal: `≥ ${millions(GOALS.billingPerMinute)} per minute: ${verdict(met.billing)}`,
    },
    {
      Figure: `the whole billing job from PostgreSQL (claim, archive, verify, price, purge), ${millions(billingJob.records)} records`,
      Value: `${millions(billingJob.recordsPerMinute)} records per minute`,
      Goal: '—',
    },
    {
      Figure: 'archive bytes per record (zstd Parquet, every column)',
      Value: fmt(billingJob.archiveBytesPerRecord),
      Goal: '—',
    },
    {
      Figure: `CPU conservation, separate worker process (${fmt(cpuSeparate.jobs)} jobs): CPU metered over its jobs ÷ its own CPU time`,
      Value: fmt(cpuSeparate.ratio),
      Goal: `${within}: ${verdict(met.cpuSeparate)}`,
    },
    {
      Figure: `CPU conservation, embedded system (gateway, API and worker in one process; ${fmt(cpuEmbedded.requests)} requests)`,
      Value: fmt(cpuEmbedded.ratio),
      Goal: `${within}: ${verdict(met.cpuEmbedded)}`,
    },
  ];
  const command = `npm run bench:billing${results.quick ? ' -- --quick' : ''}`;
  const before = fmt(results.loadAverage1mBefore);
  const after = fmt(results.loadAverage1mAfter);
  return {
    table: [
      `Figures from \`${command}\` on ${results.machine.cpus} cores (${results.machine.cpuModel}), Node ${results.machine.node.replace(/^v/, '')}, 1-minute load average ${before} before and ${after} after the run:`,
      '',
      markdownTable(rows, ['Figure', 'Value', 'Goal']),
    ].join('\n'),
    summary: summaryRow(
      `Usage metering and billing (load average ${before} before, ${after} after)`,
      `billing SQL ${fmt(billingSql.recordsPerMinute / 1e6)} M records/min over ${millions(billingSql.records)} records (goal ≥ ${fmt(GOALS.billingPerMinute / 1e6)} M/min: ${verdict(met.billing)}); shipping ${fmt(Math.round(shipping.recordsPerSecond))} records/s per process, job finish → store p99 ${ms(delay.p99Ms)} (goal ≤ ${fmt(GOALS.delayP99Ms / 1000)} s: ${verdict(met.delay)}); CPU metered ÷ process CPU ${fmt(cpuSeparate.ratio)} separate, ${fmt(cpuEmbedded.ratio)} embedded (goal ${within}: ${verdict(met.cpuSeparate && met.cpuEmbedded)})`,
      command,
    ),
  };
}
