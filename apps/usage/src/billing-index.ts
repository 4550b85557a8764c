/**
 * `@ballast/app-usage/billing`: the billing job, cold storage and the invariant checker.
 * Apart from the main entry point because they load DuckDB, which workers and API servers
 * do not need.
 */
export { type ArchiveFile, type ArchiveManifest, ArchiveVerificationError, ColdStorage, sha256File } from './archive.ts';
export { type BillingOptions, type BillingResult, type BillingStep, PeriodOpenError, runBilling } from './billing.ts';
export { invoiceLinesSql, pricedSql } from './billing-sql.ts';
export type { Invoice, InvoiceDocument, InvoiceLine } from './invoice.ts';
export {
  type CompletionLedger,
  type Discrepancy,
  type FinishedEntry,
  formatReport,
  type HourCounts,
  type VerifyOptions,
  type VerifyReport,
  verifyUsage,
} from './verify.ts';
