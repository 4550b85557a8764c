import { InvalidOptionError } from '@ballast/common';

/** A billing period: a UTC calendar month (`2026-10`) or day (`2026-10-03`). */
export interface Period {
  /** `YYYY-MM` or `YYYY-MM-DD`. */
  readonly id: string;
  readonly kind: 'month' | 'day';
  /** First instant, epoch ms (UTC). */
  readonly startMs: number;
  /** First instant after the period, epoch ms (UTC). */
  readonly endMs: number;
}

/**
 * Parses `YYYY-MM` or `YYYY-MM-DD` (UTC).
 * @throws {InvalidOptionError} naming `period` for anything else, or a date that does not exist.
 */
export function parsePeriod(value: unknown, option = 'period'): Period {
  const text = typeof value === 'string' ? value : '';
  const m = /^(\d{4})-(\d{2})(?:-(\d{2}))?$/.exec(text);
  if (!m) throw new InvalidOptionError(option, 'a month YYYY-MM or a day YYYY-MM-DD', value);
  const year = Number(m[1]);
  const month = Number(m[2]) - 1;
  if (m[3] === undefined) {
    if (month < 0 || month > 11) throw new InvalidOptionError(option, 'a month YYYY-MM or a day YYYY-MM-DD', value);
    return { id: text, kind: 'month', startMs: Date.UTC(year, month, 1), endMs: Date.UTC(year, month + 1, 1) };
  }
  const day = Number(m[3]);
  const startMs = Date.UTC(year, month, day);
  if (new Date(startMs).toISOString().slice(0, 10) !== text) throw new InvalidOptionError(option, 'a date that exists', value);
  return { id: text, kind: 'day', startMs, endMs: startMs + 86_400_000 };
}

/** The period of kind `kind` that contains `ms`. */
export function periodOf(ms: number, kind: Period['kind']): Period {
  const iso = new Date(ms).toISOString();
  return parsePeriod(kind === 'month' ? iso.slice(0, 7) : iso.slice(0, 10));
}
