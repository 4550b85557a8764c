import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sqlString } from '@ballast/app-shared/sql';
import { BallastError, durationMs, nonEmptyString } from '@ballast/common';
import { type ArchiveManifest, type ColdStorage, SUMS_SQL } from './archive.ts';
import { invoiceLinesSql, pricedSql } from './billing-sql.ts';
import { type Duck, openDuck, readParquet } from './duck.ts';
import { type InvoiceDocument, invoiceDocument, invoiceTable } from './invoice.ts';
import { lockFile, moveDurably, writeDurably } from './log-dir.ts';
import { type Period, parsePeriod } from './period.ts';
import { DEFAULT_PRICES, type PriceList, parsePriceList, unitPrices } from './prices.ts';
import { COLUMNS, exportCsvColumns, type UsageStore } from './store.ts';

/** Options of {@link runBilling}. */
export interface BillingOptions {
  /** The batch store. */
  store: UsageStore;
  /** Cold storage: where the period's records are archived (and read back for pricing). */
  cold: ColdStorage;
  /** Where invoices go: `<outDir>/billing_period=<period>/invoices.json`, `invoices.txt`, `line-items.parquet`. */
  outDir: string;
  /** @default DEFAULT_PRICES */
  prices?: PriceList;
  /**
   * A period is billed only once it ended this long ago, ms: records still on their way
   * (in local logs, in a shipper's batch) get this long to reach the store. Records that
   * arrive later are billed as adjustments in the next run. @default 3_600_000 (1 h)
   */
  closeAfterMs?: number;
  /** Remove the period's records from the store once the archive verifies. @default true */
  purge?: boolean;
  /** Wall clock, epoch ms. @default Date.now */
  now?: () => number;
  /** Progress, one call per step (the CLI prints them). */
  onStep?: (step: BillingStep) => void;
}

/** A step of a billing run, as it completes. */
export type BillingStep =
  | { step: 'claim'; billingPeriod: string; records: number; claimedAt: number }
  | { step: 'archive'; billingPeriod: string; rows: number; alreadyBilled: number; reused: boolean }
  | { step: 'verify'; billingPeriod: string; files: number }
  | { step: 'price'; billingPeriod: string; tenants: number; lines: number }
  | { step: 'purge'; billingPeriod: string; deleted: number };

/** What a billing run produced. */
export interface BillingResult {
  billingPeriod: string;
  /** Records billed (usage and adjustments). */
  records: number;
  document: InvoiceDocument;
  /** Paths written. */
  files: { invoicesJson: string; invoicesTable: string; lineItems: string; manifest: string };
}

/** The period has not ended (plus `closeAfterMs`) yet. */
export class PeriodOpenError extends BallastError {
  constructor(period: Period, closesAt: number) {
    super(
      'ERR_BALLAST_PERIOD_OPEN',
      `billing period ${period.id} is not closed yet: it can be billed from ${new Date(closesAt).toISOString()}`,
    );
  }
}

/**
 * Bills one closed period (`YYYY-MM` or `YYYY-MM-DD`), in steps that are each safe to
 * repeat, so a run killed at any instant is finished by running it again, with the same
 * bytes as an uninterrupted run:
 *
 * 1. **claim** (one transaction, once per period): every unbilled record that finished
 *    before the period's end is marked with the period; earlier ones become adjustments.
 * 2. **archive**: the claimed records go to cold storage as zstd Parquet (ordered by record
 *    id), then the manifest (row count, SHA-256 per file) is written last. Records an
 *    earlier archive already holds (a replayed log) are left out and listed.
 * 3. **verify** the archive against its manifest.
 * 4. **price** with DuckDB — map: price each record; reduce: sum per tenant and period —
 *    into line items (Parquet), invoices (JSON) and a readable table, each renamed into place.
 * 5. **purge**: the period's records leave the store, only after verification.
 */
export async function runBilling(periodArg: string, options: BillingOptions): Promise<BillingResult> {
  const period = parsePeriod(periodArg);
  const prices = parsePriceList(options.prices ?? DEFAULT_PRICES);
  const closeAfterMs = durationMs('closeAfterMs', options.closeAfterMs ?? 3_600_000, { max: 90 * 86_400_000 });
  const outDir = nonEmptyString('outDir', options.outDir);
  const now = options.now ?? Date.now;
  const step = options.onStep ?? (() => {});
  const closesAt = period.endMs + closeAfterMs;
  if (now() < closesAt) throw new PeriodOpenError(period, closesAt);

  const { store, cold } = options;
  await mkdir(join(cold.root, '.staging'), { recursive: true });
  const unlock = await lockFile(join(cold.root, '.staging', `billing-${period.id}.lock`), `billing of ${period.id}`);
  const duck = await openDuck();
  try {
    const run = await store.claim(period.id, period.endMs, now());
    step({ step: 'claim', billingPeriod: period.id, records: run.records, claimedAt: run.claimedAt });

    let manifest = await cold.manifest(period.id);
    const reused = manifest !== undefined;
    manifest ??= await archivePeriod(period, store, cold, duck);
    step({ step: 'archive', billingPeriod: period.id, rows: manifest.rows, alreadyBilled: manifest.alreadyBilled.length, reused });

    await cold.verify(manifest, duck);
    if (run.purgedAt === null) {
      const inStore = await store.claimedCount(period.id);
      if (inStore !== manifest.rows + manifest.alreadyBilled.length) {
        throw new BallastError(
          'ERR_BALLAST_ARCHIVE_MISMATCH',
          `the store holds ${inStore} records of ${period.id}; the archive has ${manifest.rows} (+${manifest.alreadyBilled.length} billed before)`,
        );
      }
    }
    step({ step: 'verify', billingPeriod: period.id, files: manifest.files.length });

    const result = await price(period, manifest, prices, cold, duck, outDir);
    step({ step: 'price', billingPeriod: period.id, tenants: result.document.invoices.length, lines: countLines(result.document) });

    if (options.purge !== false && run.purgedAt === null) {
      const deleted = await store.purge(period.id, now());
      step({ step: 'purge', billingPeriod: period.id, deleted });
    }
    return result;
  } finally {
    duck.close();
    await unlock();
  }
}

/** Archive columns: the record, when the store got it, the run that billed it, and its UTC month, day and hour. */
const ARCHIVE_SELECT = `${COLUMNS.map(([name]) => name).join(', ')}, received_at, billing_period,
  strftime(make_timestamp(finished_at * 1000), '%Y-%m') AS usage_month,
  strftime(make_timestamp(finished_at * 1000), '%Y-%m-%d') AS usage_day,
  strftime(make_timestamp(finished_at * 1000), '%Y-%m-%dT%H') AS usage_hour`;

/** Step 2: store → CSV → DuckDB → zstd Parquet in cold storage, then the manifest. */
async function archivePeriod(period: Period, store: UsageStore, cold: ColdStorage, duck: Duck): Promise<ArchiveManifest> {
  await clearStaging(cold, period.id);
  const staging = cold.stagingDir(period.id);
  await mkdir(staging, { recursive: true });
  try {
    const csv = join(staging, 'claimed.csv');
    await store.exportClaimed(period.id, csv);
    await duck.run(
      `CREATE OR REPLACE TABLE claimed AS SELECT * FROM read_csv(${sqlString(csv)}, header = true, columns = ${exportCsvColumns()})`,
    );
    const earlier = await cold.files(period.id);
    await duck.run(
      earlier.length === 0
        ? 'CREATE OR REPLACE TABLE billed AS SELECT NULL::VARCHAR AS record_id, NULL::VARCHAR AS billing_period WHERE false'
        : `CREATE OR REPLACE TABLE billed AS SELECT record_id, billing_period FROM ${readParquet(earlier)}`,
    );
    const alreadyBilled = (
      await duck.all('SELECT c.record_id, b.billing_period FROM claimed c JOIN billed b USING (record_id) ORDER BY c.record_id')
    ).map((r) => ({ recordId: String(r.record_id), billingPeriod: String(r.billing_period) }));
    const parquet = join(staging, 'part-00000.parquet');
    await duck.run(
      `COPY (SELECT ${ARCHIVE_SELECT} FROM claimed WHERE record_id NOT IN (SELECT record_id FROM billed) ORDER BY record_id)
       TO ${sqlString(parquet)} (FORMAT parquet, COMPRESSION zstd)`,
    );
    const [sums] = await duck.all(`${SUMS_SQL} FROM ${readParquet([parquet])}`);
    const rows = Number(sums?.rows);
    const file = await cold.publish(parquet, period.id, 'part-00000.parquet', rows);
    const manifest: ArchiveManifest = {
      format: 'ballast-usage-archive/1',
      billingPeriod: period.id,
      bucket: cold.bucket,
      files: [file],
      rows,
      sums: { cpuUs: String(sums?.cpu), bytesIn: String(sums?.bin), bytesOut: String(sums?.bout) },
      alreadyBilled,
    };
    await cold.commit(manifest);
    return manifest;
  } finally {
    await rm(staging, { recursive: true, force: true });
    await duck.run('DROP TABLE IF EXISTS claimed; DROP TABLE IF EXISTS billed');
  }
}

/** Removes what runs of this period that were killed left in staging. */
async function clearStaging(cold: ColdStorage, billingPeriod: string): Promise<void> {
  const root = join(cold.root, '.staging');
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (name.startsWith(`${billingPeriod}-`)) await rm(join(root, name), { recursive: true, force: true });
  }
}

/** Step 4: map (price each record) and reduce (sum per tenant and period) with DuckDB. */
async function price(
  period: Period,
  manifest: ArchiveManifest,
  prices: PriceList,
  cold: ColdStorage,
  duck: Duck,
  outDir: string,
): Promise<BillingResult> {
  const dir = join(outDir, `billing_period=${period.id}`);
  await mkdir(dir, { recursive: true });
  const paths = manifest.files.map((f) => cold.path(f.key));
  await duck.run(`CREATE OR REPLACE VIEW records AS SELECT * FROM ${readParquet(paths)}`);
  await duck.run(`CREATE OR REPLACE TABLE priced AS ${pricedSql('records', period, unitPrices(prices))}`);
  const lines = await duck.all(invoiceLinesSql('priced'));
  const lineItems = join(dir, 'line-items.parquet');
  const staged = `${lineItems}.tmp-${process.pid}`;
  await duck.run(
    `COPY (SELECT record_id, job_id, tenant, outcome, usage_hour, usage_period, billing_period, line_kind,
       cpu_amount + in_amount + out_amount + conversion_amount AS amount FROM priced ORDER BY record_id)
     TO ${sqlString(staged)} (FORMAT parquet, COMPRESSION zstd)`,
  );
  await moveDurably(staged, lineItems);
  const document = invoiceDocument(period.id, prices, manifest, lines);
  const invoicesJson = join(dir, 'invoices.json');
  const invoicesTable = join(dir, 'invoices.txt');
  await writeDurably(invoicesJson, `${JSON.stringify(document, null, 2)}\n`);
  await writeDurably(invoicesTable, invoiceTable(document));
  const manifestPath = cold.path(`${cold.partitionKey(period.id)}/manifest.json`);
  return {
    billingPeriod: period.id,
    records: manifest.rows,
    document,
    files: { invoicesJson, invoicesTable, lineItems, manifest: manifestPath },
  };
}

function countLines(document: InvoiceDocument): number {
  return document.invoices.reduce((n, invoice) => n + invoice.lines.length, 0);
}
