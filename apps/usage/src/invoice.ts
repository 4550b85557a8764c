import type { ArchiveManifest } from './archive.ts';
import { type PriceList, scaledDecimal } from './prices.ts';

/** One line of an invoice: a tenant's usage of one period, or an adjustment for an earlier one. */
export interface InvoiceLine {
  /** `usage` for the billed period; `adjustment` for records of an earlier period that arrived after it was billed. */
  kind: 'usage' | 'adjustment';
  /** The period the usage happened in (same granularity as the billing period). */
  usagePeriod: string;
  /** Records billed on this line. */
  records: number;
  conversions: number;
  failed: number;
  /** Decimal strings, exact. */
  cpuSeconds: string;
  gbIn: string;
  gbOut: string;
  /** Amounts per price, exact to 18 decimal places. */
  cpuAmount: string;
  inAmount: string;
  outAmount: string;
  conversionAmount: string;
  /** The line's amount, rounded to 2 decimal places once (half away from zero). */
  amount: string;
}

/** One tenant's invoice. */
export interface Invoice {
  tenant: string;
  lines: InvoiceLine[];
  /** Sum of the lines' amounts. */
  total: string;
}

/** What a billing run writes to `invoices.json`: nothing in it depends on when the run happened. */
export interface InvoiceDocument {
  billingPeriod: string;
  currency: string;
  prices: PriceList;
  archive: { bucket: string; manifest: string; rows: number; files: Array<{ key: string; sha256: string }> };
  invoices: Invoice[];
}

type Row = Record<string, string | number | boolean | null>;

/** Builds the invoice document from the reduce step's rows (ordered by tenant, kind, period). */
export function invoiceDocument(billingPeriod: string, prices: PriceList, manifest: ArchiveManifest, rows: Row[]): InvoiceDocument {
  const invoices: Invoice[] = [];
  for (const row of rows) {
    const tenant = String(row.tenant);
    let invoice = invoices.at(-1);
    if (invoice?.tenant !== tenant) {
      invoice = { tenant, lines: [], total: '0.00' };
      invoices.push(invoice);
    }
    invoice.lines.push({
      kind: row.line_kind === 'usage' ? 'usage' : 'adjustment',
      usagePeriod: String(row.usage_period),
      records: Number(row.records),
      conversions: Number(row.conversions),
      failed: Number(row.failed),
      cpuSeconds: scaledDecimal(String(row.cpu_us), 6),
      gbIn: scaledDecimal(String(row.bytes_in), 9),
      gbOut: scaledDecimal(String(row.bytes_out), 9),
      cpuAmount: String(row.cpu_amount),
      inAmount: String(row.in_amount),
      outAmount: String(row.out_amount),
      conversionAmount: String(row.conversion_amount),
      amount: cents(String(row.amount)),
    });
  }
  for (const invoice of invoices) invoice.total = sumCents(invoice.lines.map((l) => l.amount));
  return {
    billingPeriod,
    currency: prices.currency,
    prices,
    archive: {
      bucket: manifest.bucket,
      manifest: `usage/raw/billing_period=${billingPeriod}/manifest.json`,
      rows: manifest.rows,
      files: manifest.files.map((f) => ({ key: f.key, sha256: f.sha256 })),
    },
    invoices,
  };
}

/** The invoices as a fixed-width text table, for people. */
export function invoiceTable(document: InvoiceDocument): string {
  const header = ['tenant', 'line', 'period', 'conversions', 'failed', 'CPU s', 'GB in', 'GB out', `amount ${document.currency}`];
  const rows: string[][] = [];
  for (const invoice of document.invoices) {
    for (const [i, line] of invoice.lines.entries()) {
      rows.push([
        i === 0 ? invoice.tenant : '',
        line.kind,
        line.usagePeriod,
        String(line.conversions),
        String(line.failed),
        line.cpuSeconds,
        line.gbIn,
        line.gbOut,
        line.amount,
      ]);
    }
    rows.push(['', 'total', '', '', '', '', '', '', invoice.total]);
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] as string).length)));
  const right = new Set([3, 4, 5, 6, 7, 8]);
  const format = (r: string[]): string =>
    r
      .map((cell, c) => (right.has(c) ? cell.padStart(widths[c] as number) : cell.padEnd(widths[c] as number)))
      .join('  ')
      .trimEnd();
  const total = sumCents(document.invoices.map((i) => i.total));
  return [
    `Invoices for billing period ${document.billingPeriod} (${document.currency}), from ${document.archive.rows} archived records`,
    '',
    format(header),
    format(widths.map((w) => '-'.repeat(w))),
    ...rows.map(format),
    '',
    `${document.invoices.length} tenants, ${document.currency} ${total} in all`,
    '',
  ].join('\n');
}

/** A decimal string with exactly 2 places. */
function cents(value: string): string {
  const [whole = '0', fraction = ''] = value.split('.');
  return `${whole}.${fraction.padEnd(2, '0').slice(0, 2)}`;
}

/** Exact sum of 2-place decimal strings. */
function sumCents(values: readonly string[]): string {
  let total = 0n;
  for (const v of values) total += BigInt(v.replace('.', ''));
  return scaledDecimal(total.toString(), 2);
}
