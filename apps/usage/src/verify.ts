import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqlString } from '@ballast/app-shared/sql';
import type { ColdStorage } from './archive.ts';
import { type Duck, fileList, openDuck, readParquet } from './duck.ts';
import { recordIdFor } from './record.ts';
import { exportCsvColumns, type UsageStore } from './store.ts';

/** One job that reached a final state: an entry of the queue's completion ledger (`JobQueue.ledger`). */
export interface FinishedEntry {
  jobId: string;
  tenant?: string;
  outcome: 'done' | 'failed' | 'expired' | 'cancelled';
  finishedAt: number;
  worker?: string;
  errorCode?: string;
}

/** Where the checker reads jobs finished: a `JobQueue` (its `ledger`), or anything with that method. */
export interface CompletionLedger {
  ledger(fromMs: number, toMs: number): AsyncIterable<FinishedEntry>;
}

/** Options of {@link verifyUsage}. */
export interface VerifyOptions {
  ledger: CompletionLedger;
  store: UsageStore;
  cold: ColdStorage;
  /** Where the billing job writes invoices and line items. */
  billingDir: string;
  /** Jobs that finished in [`fromMs`, `toMs`) are checked. */
  fromMs: number;
  toMs: number;
  /**
   * Records are looked up this far beyond the range, and the ledger too for records
   * without a job, ms: a record's finish time precedes its ledger entry by up to a lease
   * (a job that ran twice). @default 600_000 (10 min)
   */
  marginMs?: number;
}

/** Counts of one tenant and hour (UTC, `YYYY-MM-DDTHH`), by the ledger's finish time. */
export interface HourCounts {
  tenant: string;
  hour: string;
  /** Jobs finished that must have a usage record (converted, or failed by their input). */
  finished: number;
  /** Those jobs with a record in the store or the archive. */
  recorded: number;
  /** Those jobs on a billing run's line items. */
  billed: number;
  missing: number;
  double: number;
}

/** A discrepancy, with the job it is about. */
export interface Discrepancy {
  kind:
    | 'missing' // finished, must be billed, no record in the store or the archive
    | 'double' // counted more than once (two records for a job, or a record in two billed archives)
    | 'orphan' // a record for a job the ledger does not have as finished
    | 'unbilled' // archived in a billed period, absent from its line items
    | 'billed-twice' // on more than one line item
    | 'billed-without-record' // a line item with no archived record
    | 'invoice-mismatch'; // an invoice line that is not the sum of its line items
  jobId: string;
  tenant: string;
  detail: string;
}

/** What {@link verifyUsage} found. */
export interface VerifyReport {
  fromMs: number;
  toMs: number;
  /** Ledger entries read (in the range). */
  jobs: number;
  hours: HourCounts[];
  discrepancies: Discrepancy[];
  /** True when there is no discrepancy. */
  ok: boolean;
}

/**
 * Checks the invariant "every finished job is billed exactly once", per tenant and hour:
 * jobs finished (the queue's completion ledger) against records in the store or the cold
 * archive, and against the billing runs' line items and invoices. Every job id missing or
 * counted twice is reported.
 *
 * A job must have a record when it was converted or failed by its input (a worker ran it);
 * an expired, cancelled or poisoned job may have one (a worker ran it before that) but
 * needs none. A record the billing job will drop (a replay of an archived one) is not
 * counted twice.
 */
export async function verifyUsage(options: VerifyOptions): Promise<VerifyReport> {
  const { fromMs, toMs } = options;
  const marginMs = options.marginMs ?? 600_000;
  const work = await mkdtemp(join(tmpdir(), 'ballast-usage-verify-'));
  const duck = await openDuck();
  try {
    const [wideFrom, wideTo] = [Math.max(0, fromMs - marginMs), toMs + marginMs];
    await loadLedger(duck, options.ledger, wideFrom, wideTo, work);
    await loadRecords(duck, options, wideFrom, wideTo, work);
    await loadBilled(duck, options.billingDir);
    const discrepancies = [...(await recordDiscrepancies(duck, fromMs, toMs)), ...(await billingDiscrepancies(duck))];
    const hours = (await duck.all(hoursSql(fromMs, toMs))).map((r) => ({
      tenant: String(r.tenant),
      hour: String(r.hour),
      finished: Number(r.finished),
      recorded: Number(r.recorded),
      billed: Number(r.billed),
      missing: Number(r.missing),
      double: Number(r.double),
    }));
    const [jobs] = await duck.all(`SELECT COUNT(*) AS n FROM ledger WHERE finished_at >= ${fromMs} AND finished_at < ${toMs}`);
    return { fromMs, toMs, jobs: Number(jobs?.n), hours, discrepancies, ok: discrepancies.length === 0 };
  } finally {
    duck.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** The ledger in DuckDB: `ledger(job_id, record_id, tenant, outcome, finished_at, hour, must_bill)`. */
async function loadLedger(duck: Duck, source: CompletionLedger, fromMs: number, toMs: number, work: string): Promise<void> {
  const lines: string[] = [];
  for await (const e of source.ledger(fromMs, toMs)) {
    const mustBill = e.outcome === 'done' || (e.outcome === 'failed' && !(e.errorCode ?? '').startsWith('ERR_BALLAST_QUEUE_'));
    lines.push(
      JSON.stringify({
        job_id: e.jobId,
        record_id: recordIdFor(e.jobId),
        tenant: e.tenant ?? 'anonymous',
        outcome: e.outcome,
        finished_at: e.finishedAt,
        must_bill: mustBill,
      }),
    );
  }
  const path = join(work, 'ledger.jsonl');
  await writeFile(path, lines.join('\n'));
  await duck.run(
    `CREATE TABLE ledger AS SELECT *, strftime(make_timestamp(finished_at * 1000), '%Y-%m-%dT%H') AS hour FROM read_json(${sqlString(path)},
       format = 'newline_delimited', columns = {job_id: 'VARCHAR', record_id: 'VARCHAR', tenant: 'VARCHAR', outcome: 'VARCHAR', finished_at: 'BIGINT', must_bill: 'BOOLEAN'})`,
  );
}

/**
 * Records in DuckDB: `store_records` (finished in the widened range), `archived` (every
 * complete archive, same range), and `counted`: one row per record that is or will be
 * billed — archived rows, and store rows not (yet) archived.
 */
async function loadRecords(duck: Duck, options: VerifyOptions, fromMs: number, toMs: number, work: string): Promise<void> {
  const csv = join(work, 'store.csv');
  await options.store.exportFinished(fromMs, toMs, csv);
  await duck.run(
    `CREATE TABLE store_records AS SELECT record_id, job_id, tenant, finished_at, billing_period FROM read_csv(${sqlString(csv)}, header = true,
       columns = ${exportCsvColumns()})`,
  );
  const files = await options.cold.files();
  await duck.run(
    files.length === 0
      ? 'CREATE TABLE archived AS SELECT record_id, job_id, tenant, finished_at, billing_period FROM store_records WHERE false'
      : `CREATE TABLE archived AS SELECT record_id, job_id, tenant, finished_at, billing_period FROM ${readParquet(files)}
         WHERE finished_at >= ${fromMs} AND finished_at < ${toMs}`,
  );
  await duck.run(`CREATE TABLE counted AS
    SELECT record_id, job_id, tenant, finished_at, 'archive ' || billing_period AS place FROM archived
    UNION ALL
    SELECT record_id, job_id, tenant, finished_at, 'store' || COALESCE(' (claimed by ' || billing_period || ')', '') AS place FROM store_records s
    WHERE NOT EXISTS (SELECT 1 FROM archived a WHERE a.record_id = s.record_id)`);
}

/** Line items of every billing run, and the invoice lines they must add up to. */
async function loadBilled(duck: Duck, billingDir: string): Promise<void> {
  const runs = (await readdir(billingDir).catch(() => [] as string[])).filter((n) => n.startsWith('billing_period=')).sort();
  const items: string[] = [];
  const invoices: string[] = [];
  for (const run of runs) {
    const lineItems = join(billingDir, run, 'line-items.parquet');
    const json = join(billingDir, run, 'invoices.json');
    if ((await stat(lineItems).catch(() => undefined)) && (await stat(json).catch(() => undefined))) {
      items.push(lineItems);
      invoices.push(json);
    }
  }
  await duck.run(
    items.length === 0
      ? "CREATE TABLE priced AS SELECT ''::VARCHAR AS record_id, ''::VARCHAR AS job_id, ''::VARCHAR AS tenant, ''::VARCHAR AS billing_period, ''::VARCHAR AS line_kind, ''::VARCHAR AS usage_period, 0::DECIMAL(38,18) AS amount WHERE false"
      : `CREATE TABLE priced AS SELECT record_id, job_id, tenant, billing_period, line_kind, usage_period, amount FROM ${readParquet(items)}`,
  );
  await duck.run(
    invoices.length === 0
      ? "CREATE TABLE invoice_lines AS SELECT ''::VARCHAR AS billing_period, ''::VARCHAR AS tenant, ''::VARCHAR AS kind, ''::VARCHAR AS usage_period, 0 AS records, '0'::VARCHAR AS amount WHERE false"
      : `CREATE TABLE invoice_lines AS
         SELECT doc.billingPeriod AS billing_period, inv.tenant AS tenant, line.kind AS kind, line.usagePeriod AS usage_period, line.records AS records, line.amount AS amount
         FROM read_json(${fileList(invoices)}, maximum_object_size = 1073741824, columns = {${INVOICE_COLUMNS}}) doc, UNNEST(doc.invoices) AS t(inv), UNNEST(inv.lines) AS l(line)`,
  );
}

/** Missing, double-counted and orphaned records. */
async function recordDiscrepancies(duck: Duck, fromMs: number, toMs: number): Promise<Discrepancy[]> {
  const inRange = (alias: string): string => `${alias}.finished_at >= ${fromMs} AND ${alias}.finished_at < ${toMs}`;
  const rows = await duck.all(`
    SELECT 'missing' AS kind, l.job_id, l.tenant, 'finished ' || l.outcome || ' at ' || l.hour || ', no usage record in the store or the archive' AS detail
    FROM ledger l WHERE ${inRange('l')} AND l.must_bill AND NOT EXISTS (SELECT 1 FROM counted c WHERE c.job_id = l.job_id)
    UNION ALL
    SELECT 'double', l.job_id, l.tenant, 'counted ' || COUNT(*) || ' times: ' || string_agg(c.place || ' record ' || c.record_id, '; ' ORDER BY c.place, c.record_id)
    FROM ledger l JOIN counted c ON c.job_id = l.job_id WHERE ${inRange('l')} GROUP BY l.job_id, l.tenant HAVING COUNT(*) > 1
    UNION ALL
    SELECT 'orphan', c.job_id, c.tenant, 'a usage record (' || c.place || ') for a job the completion ledger does not have as finished'
    FROM counted c WHERE ${inRange('c')} AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.job_id = c.job_id)
    ORDER BY 1, 2`);
  return rows.map(toDiscrepancy);
}

/** Archived records against line items, and line items against invoices. */
async function billingDiscrepancies(duck: Duck): Promise<Discrepancy[]> {
  const rows = await duck.all(`
    SELECT 'unbilled' AS kind, a.job_id, a.tenant, 'archived in billed period ' || a.billing_period || ' but on none of its line items' AS detail
    FROM archived a WHERE a.billing_period IN (SELECT DISTINCT billing_period FROM invoice_lines)
      AND NOT EXISTS (SELECT 1 FROM priced p WHERE p.record_id = a.record_id AND p.billing_period = a.billing_period)
    UNION ALL
    SELECT 'billed-twice', job_id, tenant, 'on ' || COUNT(*) || ' line items: ' || string_agg(billing_period, ', ' ORDER BY billing_period)
    FROM priced WHERE job_id IN (SELECT job_id FROM ledger UNION SELECT job_id FROM archived) GROUP BY job_id, tenant HAVING COUNT(*) > 1
    UNION ALL
    SELECT 'billed-without-record', p.job_id, p.tenant, 'a line item of ' || p.billing_period || ' with no record in its archive'
    FROM priced p WHERE p.job_id IN (SELECT job_id FROM ledger)
      AND NOT EXISTS (SELECT 1 FROM archived a WHERE a.record_id = p.record_id AND a.billing_period = p.billing_period)
    UNION ALL
    SELECT 'invoice-mismatch', '', COALESCE(i.tenant, s.tenant),
      'invoice of ' || COALESCE(i.billing_period, s.billing_period) || ', ' || COALESCE(i.kind, s.line_kind) || ' ' || COALESCE(i.usage_period, s.usage_period)
      || ': invoice says ' || COALESCE(i.records::VARCHAR, 'nothing') || ' records, ' || COALESCE(i.amount, '-')
      || '; line items add up to ' || COALESCE(s.records::VARCHAR, 'nothing') || ' records, ' || COALESCE(s.amount::VARCHAR, '-')
    FROM invoice_lines i FULL JOIN (
      SELECT billing_period, tenant, line_kind, usage_period, COUNT(*) AS records, ROUND(SUM(amount), 2) AS amount FROM priced GROUP BY ALL
    ) s ON i.billing_period = s.billing_period AND i.tenant = s.tenant AND i.kind = s.line_kind AND i.usage_period = s.usage_period
    WHERE i.records IS DISTINCT FROM s.records OR CAST(i.amount AS DECIMAL(38,2)) IS DISTINCT FROM s.amount
    ORDER BY 1, 2`);
  return rows.map(toDiscrepancy);
}

/** The parts of invoices.json the checker reads, typed (periods stay text: '2026-10-03' is not a DATE here). */
const INVOICE_COLUMNS =
  "billingPeriod: 'VARCHAR', invoices: 'STRUCT(tenant VARCHAR, lines STRUCT(kind VARCHAR, usagePeriod VARCHAR, records BIGINT, amount VARCHAR)[])[]'";

function toDiscrepancy(r: Record<string, unknown>): Discrepancy {
  return { kind: r.kind as Discrepancy['kind'], jobId: String(r.job_id), tenant: String(r.tenant), detail: String(r.detail) };
}

/** Per tenant and hour of the ledger: finished, recorded, billed, missing, double. */
function hoursSql(fromMs: number, toMs: number): string {
  return `
    WITH per_job AS (
      SELECT l.job_id, l.tenant, l.hour, l.must_bill,
        (SELECT COUNT(*) FROM counted c WHERE c.job_id = l.job_id) AS records,
        (SELECT COUNT(*) FROM priced p WHERE p.job_id = l.job_id) AS lines
      FROM ledger l WHERE l.finished_at >= ${fromMs} AND l.finished_at < ${toMs}
    )
    SELECT tenant, hour,
      SUM(CASE WHEN must_bill THEN 1 ELSE 0 END) AS finished,
      SUM(CASE WHEN records > 0 THEN 1 ELSE 0 END) AS recorded,
      SUM(CASE WHEN lines > 0 THEN 1 ELSE 0 END) AS billed,
      SUM(CASE WHEN must_bill AND records = 0 THEN 1 ELSE 0 END) AS missing,
      SUM(CASE WHEN records > 1 OR lines > 1 THEN 1 ELSE 0 END) AS double
    FROM per_job GROUP BY tenant, hour ORDER BY tenant, hour`;
}

/** The report as text: the table per tenant and hour, then every discrepancy, one line each. */
export function formatReport(report: VerifyReport): string {
  const lines = [
    `Usage invariant, jobs finished ${new Date(report.fromMs).toISOString()} – ${new Date(report.toMs).toISOString()}: ${report.jobs} jobs`,
    '',
    'tenant                hour            finished  recorded    billed   missing    double',
  ];
  for (const h of report.hours) {
    lines.push(
      `${h.tenant.padEnd(20).slice(0, 20)}  ${h.hour.padEnd(14)}  ${[h.finished, h.recorded, h.billed, h.missing, h.double].map((n) => String(n).padStart(8)).join('  ')}`,
    );
  }
  lines.push('');
  if (report.ok) {
    lines.push('OK: every finished job has exactly one usage record; 0 lost, 0 counted twice.');
  } else {
    const counts = new Map<string, number>();
    for (const d of report.discrepancies) counts.set(d.kind, (counts.get(d.kind) ?? 0) + 1);
    lines.push(`USAGE INVARIANT VIOLATED: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`);
    for (const d of report.discrepancies) lines.push(`  ${d.kind.padEnd(22)} job ${d.jobId || '-'}  tenant ${d.tenant}  ${d.detail}`);
  }
  return `${lines.join('\n')}\n`;
}
