import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { beforeEach, describe, expect, it } from 'vitest';
import { ArchiveVerificationError, type ColdStorage } from './archive.ts';
import { PeriodOpenError, runBilling } from './billing.ts';
import { DEFAULT_PRICES, priceTotals } from './prices.ts';
import { type FinishedJob, toRecord, type UsageRecord } from './record.ts';
import type { UsageStore } from './store.ts';
import { finishedJob, useUsageFixture } from './testing/index.ts';

const usage = useUsageFixture('billing');
let store: UsageStore;
let cold: ColdStorage;
let outDir: string;
beforeEach(() => {
  ({ store, cold, billingDir: outDir } = usage);
});

const DAY = Date.UTC(2026, 9, 3);
const at = (day: number, hour: number, n: number): Partial<FinishedJob> => ({
  finishedAt: DAY + (day - 3) * 86_400_000 + hour * 3_600_000 + n,
  startedAt: DAY + (day - 3) * 86_400_000 + hour * 3_600_000 + n - 20,
  enqueuedAt: DAY + (day - 3) * 86_400_000 + hour * 3_600_000 + n - 50,
});
const options = () => ({ store, cold, outDir, now: () => Date.UTC(2026, 10, 15) });

/** The expected amount of records, computed here without SQL: pico-dollars as BigInt. */
function expectedCents(records: UsageRecord[]): string {
  // USD prices: 0.00004 per CPU-s = 40 pico per CPU-µs; 0.02/GB = 20 pico per byte in; 0.09/GB = 90 per byte out; 0.0001 = 1e8 pico per conversion.
  let pico = 0n;
  for (const r of records) {
    pico += BigInt(r.cpuUs) * 40n;
    if (r.outcome === 'done') pico += BigInt(r.bytesIn) * 20n + BigInt(r.bytesOut) * 90n + 100_000_000n;
  }
  const cents = (pico + 5n * 10n ** 9n) / 10n ** 10n; // round half up to cents (1 cent = 10^10 pico-dollars)
  return `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`;
}

describe('runBilling', () => {
  it('bills a closed day per tenant from a documented price list, archives and verifies, then purges the store', async () => {
    const records = Array.from({ length: 300 }, (_, i) =>
      toRecord(
        finishedJob(i, {
          ...at(3, i % 24, i),
          bytesIn: 4_000_000 + i * 1000,
          cpuMs: 150 + i,
          ...(i % 10 === 0 ? { outcome: 'failed', errorCode: 'ERR_BALLAST_IMAGE_CORRUPT' } : {}),
        }),
      ),
    );
    const nextDay = toRecord(finishedJob(1000, at(4, 1, 0)));
    await store.insert([...records, nextDay]);
    const steps: string[] = [];
    const result = await runBilling('2026-10-03', { ...options(), onStep: (s) => steps.push(s.step) });
    expect(steps).toEqual(['claim', 'archive', 'verify', 'price', 'purge']);
    expect(result.records).toBe(300);
    const doc = result.document;
    expect(doc.invoices.map((i) => i.tenant)).toEqual(['tenant-0', 'tenant-1', 'tenant-2']);
    for (const invoice of doc.invoices) {
      const mine = records.filter((r) => r.tenant === invoice.tenant);
      expect(invoice.lines).toHaveLength(1);
      expect(invoice.lines[0]).toMatchObject({ kind: 'usage', usagePeriod: '2026-10-03', records: mine.length });
      expect(invoice.lines[0]?.failed).toBe(mine.filter((r) => r.outcome === 'failed').length);
      expect(invoice.total).toBe(expectedCents(mine));
      // The estimate GET /v1/usage shows prices the totals: the same figure.
      const done = mine.filter((r) => r.outcome === 'done');
      const sum = (rs: UsageRecord[], f: (r: UsageRecord) => number) => String(rs.reduce((n, r) => n + f(r), 0));
      const totals = {
        conversions: done.length,
        cpuUs: sum(mine, (r) => r.cpuUs),
        bytesIn: sum(done, (r) => r.bytesIn),
        bytesOut: sum(done, (r) => r.bytesOut),
      };
      expect(priceTotals(totals, DEFAULT_PRICES)).toBe(invoice.total);
      const cpu = mine.reduce((s, r) => s + r.cpuUs, 0);
      expect(invoice.lines[0]?.cpuSeconds).toBe((cpu / 1e6).toFixed(6));
    }
    // Archive: the manifest matches the file, and the store keeps only the next day's record.
    const manifest = JSON.parse(readFileSync(result.files.manifest, 'utf8'));
    expect(manifest.rows).toBe(300);
    const file = cold.path(manifest.files[0].key);
    expect(manifest.files[0].key).toBe('usage/raw/billing_period=2026-10-03/part-00000.parquet');
    expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(manifest.files[0].sha256);
    expect(await store.count()).toBe(1);
    expect(readFileSync(result.files.invoicesTable, 'utf8')).toMatch(/tenant-0 +usage +2026-10-03 +90 +10 /);
  });

  it('gives byte-identical output on a re-run', async () => {
    await store.insert(Array.from({ length: 50 }, (_, i) => toRecord(finishedJob(i, at(3, 5, i)))));
    const first = await runBilling('2026-10-03', options());
    const files = Object.values(first.files);
    const bytes = files.map((f) => readFileSync(f));
    const parquet = readFileSync(cold.path('usage/raw/billing_period=2026-10-03/part-00000.parquet'));
    await runBilling('2026-10-03', options());
    for (const [i, f] of files.entries()) expect(readFileSync(f).equals(bytes[i] as Buffer), f).toBe(true);
    expect(readFileSync(cold.path('usage/raw/billing_period=2026-10-03/part-00000.parquet')).equals(parquet)).toBe(true);
  });

  it('bills late records as adjustments in the next invoice, and a replayed billed record never again', async () => {
    const billed = Array.from({ length: 20 }, (_, i) => toRecord(finishedJob(i, at(3, 5, i))));
    await store.insert(billed);
    await runBilling('2026-10-03', options());
    const late = toRecord(finishedJob(500, at(3, 23, 0))); // finished on the 3rd, reached the store after the 3rd was billed
    const onTime = toRecord(finishedJob(501, { ...at(4, 2, 0), tenant: late.tenant }));
    expect(await store.insert([late, onTime, billed[0] as UsageRecord])).toEqual({ inserted: 3, duplicates: 0 }); // billed[0] replayed
    const next = await runBilling('2026-10-04', options());
    const invoice = next.document.invoices.find((i) => i.tenant === late.tenant);
    expect(invoice?.lines.map((l) => [l.kind, l.usagePeriod, l.records])).toEqual([
      ['usage', '2026-10-04', 1],
      ['adjustment', '2026-10-03', 1],
    ]);
    expect(next.records).toBe(2);
    const manifest = JSON.parse(readFileSync(next.files.manifest, 'utf8'));
    expect(manifest.alreadyBilled).toEqual([{ recordId: billed[0]?.recordId, billingPeriod: '2026-10-03' }]);
    expect(await store.count()).toBe(0);
  });

  it('refuses a period that is not closed, and a malformed one, by name', async () => {
    await expect(runBilling('2026-11-15', { ...options(), closeAfterMs: 3_600_000 })).rejects.toBeInstanceOf(PeriodOpenError);
    await expect(runBilling('2026-11-14', { ...options(), now: () => Date.UTC(2026, 10, 15, 0, 30) })).rejects.toThrow(
      /not closed yet: it can be billed from 2026-11-15T01:00:00.000Z/,
    );
    await expect(runBilling('2026-13', options())).rejects.toThrow(/period must be a month YYYY-MM or a day YYYY-MM-DD, got "2026-13"/);
    await expect(runBilling('2026-02-30', options())).rejects.toThrow(/period must be a date that exists/);
    await expect(runBilling('2026-10', { ...options(), prices: { ...DEFAULT_PRICES, gbIn: '1e-3' } })).rejects.toThrow(/prices.gbIn/);
  });

  it('keeps the records in the store when the archive does not match its manifest', async () => {
    await store.insert(Array.from({ length: 10 }, (_, i) => toRecord(finishedJob(i, at(3, 5, i)))));
    await runBilling('2026-10-03', { ...options(), purge: false });
    const file = cold.path('usage/raw/billing_period=2026-10-03/part-00000.parquet');
    const damaged = readFileSync(file);
    const middle = damaged.length >> 1;
    damaged.writeUInt8(damaged.readUInt8(middle) ^ 0xff, middle);
    writeFileSync(file, damaged);
    await expect(runBilling('2026-10-03', options())).rejects.toBeInstanceOf(ArchiveVerificationError);
    expect(await store.count()).toBe(10);
  });
});
