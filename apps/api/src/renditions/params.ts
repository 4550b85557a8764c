import { FORMATS, MAX_DIMENSION, MAX_EFFORT, parseResizeParams, type ResizeParams } from '@ballast/app-queue';
import { HttpError } from '@ballast/app-shared';
import type { Format, Rendition } from './plan.ts';

/** Most widths in one set. */
export const MAX_WIDTHS = 8;
/** Most renditions (widths × formats) in one set. */
export const MAX_RENDITIONS = 16;

/** A validated `POST /v1/renditions` request. */
export interface RenditionRequest {
  /** Every rendition asked for: each width in each format, widths in the order given, within a width the formats in order. */
  renditions: Rendition[];
  /** The resize parameters shared by every rendition (quality, animated, keepMetadata), already validated. */
  common: Pick<ResizeParams, 'quality' | 'animated' | 'keepMetadata'>;
  mode: 'sync' | 'async';
  deadlineMs: number;
  /** False: all renditions or none (503 + `Retry-After` instead of a partial answer). */
  partial: boolean;
}

const KEYS = ['widths', 'formats', 'quality', 'effort', 'animated', 'keepMetadata', 'mode', 'deadlineMs', 'partial'];

function invalid(message: string): HttpError {
  return new HttpError(400, 'ERR_BALLAST_INVALID_OPTION', message);
}

/**
 * Reads and validates every parameter of a rendition-set request by name: unknown,
 * repeated, malformed or out-of-range ones are refused (400) before anything else is read.
 */
export function parseRenditionQuery(queries: Record<string, string[]>, defaultDeadlineMs: number, maxDeadlineMs: number): RenditionRequest {
  const one: Record<string, string> = {};
  for (const [key, values] of Object.entries(queries)) {
    if (!KEYS.includes(key)) throw invalid(`unknown parameter ${JSON.stringify(key.slice(0, 64))}; expected one of ${KEYS.join(', ')}`);
    if (values.length > 1) throw invalid(`parameter ${JSON.stringify(key)} is given ${values.length} times; give it once`);
    one[key] = values[0] ?? '';
  }
  if (one.widths === undefined) throw invalid(`widths is required: a comma-separated list of 1 to ${MAX_WIDTHS} widths, px`);
  const widths = list(
    'widths',
    one.widths,
    MAX_WIDTHS,
    (item) => {
      const n = /^\d{1,5}$/.test(item) ? Number(item) : Number.NaN;
      return n >= 1 && n <= MAX_DIMENSION ? n : undefined;
    },
    `integers between 1 and ${MAX_DIMENSION}`,
  );
  const formats = list(
    'formats',
    one.formats ?? 'jpeg',
    FORMATS.length,
    (item) => ((FORMATS as readonly string[]).includes(item) ? (item as Format) : undefined),
    `formats among ${FORMATS.join(', ')}`,
  );
  if (widths.length * formats.length > MAX_RENDITIONS) {
    throw invalid(
      `${widths.length} widths × ${formats.length} formats is ${widths.length * formats.length} renditions; at most ${MAX_RENDITIONS}`,
    );
  }
  const efforts = parseEfforts(one.effort, formats);
  const base = parseResizeParams(pick(one, ['quality', 'animated', 'keepMetadata']));
  const renditions = widths.flatMap((width) =>
    formats.map((format) => {
      const params = parseResizeParams({ width, format, effort: efforts[format] });
      return { width, format, effort: params.effort };
    }),
  );
  return {
    renditions,
    common: { quality: base.quality, animated: base.animated, keepMetadata: base.keepMetadata },
    mode: choice('mode', one.mode, ['sync', 'async'], 'sync'),
    deadlineMs: deadline(one.deadlineMs, defaultDeadlineMs, maxDeadlineMs),
    partial: choice('partial', one.partial, ['true', 'false'], 'true') === 'true',
  };
}

/** A comma-separated list of distinct items, 1 to `max` of them, each read by `read` (undefined: invalid). */
function list<T>(name: string, raw: string, max: number, read: (item: string) => T | undefined, what: string): T[] {
  const items = raw.split(',');
  if (raw === '' || items.length > max) throw invalid(`${name} must list 1 to ${max} ${what}, comma-separated; got ${quote(raw)}`);
  const out: T[] = [];
  for (const item of items) {
    const value = read(item.trim());
    if (value === undefined) throw invalid(`${name} must list ${what}; ${quote(item)} is not one`);
    if (out.includes(value)) throw invalid(`${name} lists ${quote(item)} twice`);
    out.push(value);
  }
  return out;
}

/** `effort=webp:4,avif:2`: an effort per format asked (others keep their default). */
function parseEfforts(raw: string | undefined, formats: readonly Format[]): Partial<Record<Format, number>> {
  if (raw === undefined) return {};
  const out: Partial<Record<Format, number>> = {};
  for (const pair of raw.split(',')) {
    const match = /^(jpeg|png|webp|avif):(\d{1,2})$/.exec(pair.trim());
    if (!match) throw invalid(`effort must list format:effort pairs such as webp:4,avif:2; got ${quote(pair)}`);
    const format = match[1] as Format;
    if (!formats.includes(format)) throw invalid(`effort names ${format}, which formats does not ask for`);
    if (out[format] !== undefined) throw invalid(`effort names ${format} twice`);
    const effort = Number(match[2]);
    if (effort > MAX_EFFORT[format]) throw invalid(`effort for ${format} must be between 0 and ${MAX_EFFORT[format]}, got ${effort}`);
    out[format] = effort;
  }
  return out;
}

function choice<const T extends string>(name: string, raw: string | undefined, allowed: readonly T[], fallback: T): T {
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw invalid(`${name} must be ${allowed.join(' or ')}, got ${quote(raw)}`);
  return raw as T;
}

function deadline(raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= max)) throw invalid(`deadlineMs must be an integer between 1 and ${max}, got ${quote(raw)}`);
  return n;
}

function pick(from: Record<string, string>, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key];
  return out;
}

/** A client's value quoted for an error message, cut short: a hostile one cannot make the answer large. */
function quote(value: string): string {
  return JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
}
