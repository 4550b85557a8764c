import { readFile } from 'node:fs/promises';
import { InvalidOptionError } from '@ballast/common';

/**
 * What usage costs, as exact decimal strings in `currency` (at most 9 decimal places).
 * A GB is 10^9 bytes. Failed conversions pay for their CPU only (see apps/README.md).
 */
export interface PriceList {
  /** ISO 4217 code, e.g. `USD`. */
  currency: string;
  /** Per CPU-second of conversion. */
  cpuSecond: string;
  /** Per GB of input (successful conversions). */
  gbIn: string;
  /** Per GB of output. */
  gbOut: string;
  /** Per successful conversion. */
  conversion: string;
}

/** The reference price list (also in `apps/usage/prices.json`). */
export const DEFAULT_PRICES: Readonly<PriceList> = Object.freeze({
  currency: 'USD',
  cpuSecond: '0.00004',
  gbIn: '0.02',
  gbOut: '0.09',
  conversion: '0.0001',
});

const DECIMAL = /^\d{1,9}(\.\d{1,9})?$/;

/**
 * Validates a price list.
 * @throws {InvalidOptionError} naming the price that is missing or not a decimal string.
 */
export function parsePriceList(value: unknown): PriceList {
  if (typeof value !== 'object' || value === null) throw new InvalidOptionError('prices', 'an object', value);
  const v = value as Record<string, unknown>;
  if (typeof v.currency !== 'string' || !/^[A-Z]{3}$/.test(v.currency)) {
    throw new InvalidOptionError('prices.currency', 'a three-letter ISO 4217 code such as "USD"', v.currency);
  }
  const price = (key: keyof Omit<PriceList, 'currency'>): string => {
    const p = v[key];
    if (typeof p !== 'string' || !DECIMAL.test(p)) {
      throw new InvalidOptionError(`prices.${key}`, 'a decimal string with at most 9 decimal places, e.g. "0.02"', p);
    }
    return p;
  };
  return {
    currency: v.currency,
    cpuSecond: price('cpuSecond'),
    gbIn: price('gbIn'),
    gbOut: price('gbOut'),
    conversion: price('conversion'),
  };
}

/** Reads and validates a price list file (JSON). */
export async function readPriceList(path: string): Promise<PriceList> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new InvalidOptionError('prices', `a readable JSON price list file (${(error as Error).message})`, path);
  }
  return parsePriceList(json);
}

/** Prices per metered unit (CPU-µs, byte, conversion) as exact decimal strings: the SQL's inputs. */
export interface UnitPrices {
  cpuUs: string;
  byteIn: string;
  byteOut: string;
  conversion: string;
}

/** Divides each price down to its metered unit, exactly (decimal point shifts). */
export function unitPrices(prices: PriceList): UnitPrices {
  return {
    cpuUs: shift(prices.cpuSecond, 6),
    byteIn: shift(prices.gbIn, 9),
    byteOut: shift(prices.gbOut, 9),
    conversion: prices.conversion,
  };
}

/** `value` / 10^digits, as a decimal string. */
function shift(value: string, digits: number): string {
  const [whole = '0', fraction = ''] = value.split('.');
  const padded = whole.padStart(digits + 1, '0');
  const cut = padded.length - digits;
  const result = `${padded.slice(0, cut)}.${padded.slice(cut)}${fraction}`;
  return result.replace(/^0+(?=\d)/, '');
}

/** What {@link priceTotals} needs: billable quantities (integers, as strings or numbers). */
export interface BillableTotals {
  conversions: number;
  cpuUs: string | number;
  bytesIn: string | number;
  bytesOut: string | number;
}

/**
 * The amount of billable totals, exactly (prices are linear, so pricing the totals equals
 * the sum of the per-record prices the billing job computes), rounded to cents half away
 * from zero as an invoice line is. For estimates such as `GET /v1/usage`.
 */
export function priceTotals(totals: BillableTotals, prices: PriceList): string {
  const unit = unitPrices(prices);
  const scale = 10n ** 18n;
  const exact =
    BigInt(totals.cpuUs) * fixed(unit.cpuUs) +
    BigInt(totals.bytesIn) * fixed(unit.byteIn) +
    BigInt(totals.bytesOut) * fixed(unit.byteOut) +
    BigInt(totals.conversions) * fixed(unit.conversion);
  const cents = (exact + scale / 200n) / (scale / 100n);
  return `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`;
}

/** A decimal string as an integer scaled by 10^18. */
function fixed(decimal: string): bigint {
  const [whole = '0', fraction = ''] = decimal.split('.');
  return BigInt(whole) * 10n ** 18n + BigInt(fraction.padEnd(18, '0').slice(0, 18) || '0');
}

/** An integer (string) divided by 10^digits, as a decimal string with `digits` places: µs → s, bytes → GB. */
export function scaledDecimal(integer: string, digits: number): string {
  const negative = integer.startsWith('-');
  const abs = (negative ? integer.slice(1) : integer).padStart(digits + 1, '0');
  return `${negative ? '-' : ''}${abs.slice(0, -digits)}.${abs.slice(-digits)}`;
}
