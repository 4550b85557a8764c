import { sqlString } from '@ballast/app-shared/sql';
import type { Period } from './period.ts';
import type { UnitPrices } from './prices.ts';

/**
 * The billing SQL: plain SQL (CAST, CASE, SUM, COUNT, ROUND, GROUP BY) over the archive's
 * columns, so the same statements run on DuckDB here and on Spark SQL, Trino or ClickHouse
 * over the same Parquet partitions (see apps/README.md). `records` names a table or view
 * over one billing period's archive files.
 *
 * Money is DECIMAL(38,18) from end to end: a quantity (DECIMAL(18,0)) times a unit price
 * (DECIMAL(20,18)) is exact, sums are exact, and amounts are rounded to cents once per
 * invoice line. No floating point anywhere, so every run prints the same figures.
 */

/** The map step: one priced line item per record. */
export function pricedSql(records: string, period: Period, unit: UnitPrices): string {
  const usagePeriod = period.kind === 'month' ? 'usage_month' : 'usage_day';
  const price = (value: string): string => `CAST(${sqlString(value)} AS DECIMAL(20,18))`;
  const qty = (column: string): string => `CAST(${column} AS DECIMAL(18,0))`;
  return `
SELECT
  record_id,
  job_id,
  tenant,
  outcome,
  usage_hour,
  ${usagePeriod} AS usage_period,
  billing_period,
  CASE WHEN ${usagePeriod} = billing_period THEN 'usage' ELSE 'adjustment' END AS line_kind,
  cpu_us,
  CASE WHEN outcome = 'done' THEN bytes_in ELSE 0 END AS billed_bytes_in,
  CASE WHEN outcome = 'done' THEN bytes_out ELSE 0 END AS billed_bytes_out,
  ${qty('cpu_us')} * ${price(unit.cpuUs)} AS cpu_amount,
  ${qty("CASE WHEN outcome = 'done' THEN bytes_in ELSE 0 END")} * ${price(unit.byteIn)} AS in_amount,
  ${qty("CASE WHEN outcome = 'done' THEN bytes_out ELSE 0 END")} * ${price(unit.byteOut)} AS out_amount,
  ${qty("CASE WHEN outcome = 'done' THEN 1 ELSE 0 END")} * ${price(unit.conversion)} AS conversion_amount
FROM ${records}`;
}

/** The reduce step: invoice lines, summed per tenant, kind (usage or adjustment) and usage period. */
export function invoiceLinesSql(priced: string): string {
  return `
SELECT
  tenant,
  line_kind,
  usage_period,
  COUNT(*) AS records,
  SUM(CASE WHEN outcome = 'done' THEN 1 ELSE 0 END) AS conversions,
  SUM(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS failed,
  SUM(cpu_us) AS cpu_us,
  SUM(billed_bytes_in) AS bytes_in,
  SUM(billed_bytes_out) AS bytes_out,
  SUM(cpu_amount) AS cpu_amount,
  SUM(in_amount) AS in_amount,
  SUM(out_amount) AS out_amount,
  SUM(conversion_amount) AS conversion_amount,
  ROUND(SUM(cpu_amount + in_amount + out_amount + conversion_amount), 2) AS amount
FROM ${priced}
GROUP BY tenant, line_kind, usage_period
ORDER BY tenant, line_kind DESC, usage_period`;
}
