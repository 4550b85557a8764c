import { InvalidOptionError } from '@ballast/common';

/** Output formats the system produces. */
export const FORMATS = ['jpeg', 'png', 'webp', 'avif'] as const;
/** How the image fits the requested box (sharp's `fit`). */
export const FITS = ['cover', 'contain', 'inside', 'outside', 'fill'] as const;

/** Largest width or height a client may ask for, px. */
export const MAX_DIMENSION = 8192;
/** Largest encoder effort per format: AVIF's top efforts cost seconds per image, so they are bounded. */
export const MAX_EFFORT: Readonly<Record<ResizeParams['format'], number>> = { jpeg: 0, png: 9, webp: 6, avif: 4 };

/**
 * One resize job's parameters: the contract between the API (which validates them
 * from the query string) and the workers (which validate them again, since a queue
 * may be shared with other producers).
 */
export interface ResizeParams {
  /** Target width, px (1–8192); omitted: scaled from height, or unchanged. */
  width?: number;
  /** Target height, px (1–8192). */
  height?: number;
  /** @default 'cover' */
  fit: (typeof FITS)[number];
  /** @default 'jpeg' */
  format: (typeof FORMATS)[number];
  /** Encoder quality 1–100 (ignored for PNG). @default 80 */
  quality: number;
  /** Encoder effort, bounded per format by {@link MAX_EFFORT}. @default 4 for AVIF, 4 for WebP, 6 for PNG */
  effort: number;
  /** Keep every frame of an animated input (GIF, WebP); otherwise only the first. @default false */
  animated: boolean;
  /** Keep EXIF/ICC/XMP metadata; stripped by default. @default false */
  keepMetadata: boolean;
}

const DEFAULT_EFFORT: Readonly<Record<ResizeParams['format'], number>> = { jpeg: 0, png: 6, webp: 4, avif: 4 };
const KNOWN = new Set(['width', 'height', 'fit', 'format', 'quality', 'effort', 'animated', 'keepMetadata']);

/**
 * Validates raw parameters (strings from a query string, or JSON values) and fills in
 * defaults. Throws an {@link InvalidOptionError} naming the first wrong parameter.
 */
export function parseResizeParams(raw: Readonly<Record<string, unknown>>): ResizeParams {
  for (const key of Object.keys(raw)) if (!KNOWN.has(key)) throw new InvalidOptionError(key, `one of ${[...KNOWN].join(', ')}`, key);
  const width = optionalInt(raw, 'width', 1, MAX_DIMENSION);
  const height = optionalInt(raw, 'height', 1, MAX_DIMENSION);
  const fit = choice(raw, 'fit', FITS, 'cover');
  const format = choice(raw, 'format', FORMATS, 'jpeg');
  const quality = optionalInt(raw, 'quality', 1, 100) ?? 80;
  if (MAX_EFFORT[format] === 0 && raw.effort !== undefined && raw.effort !== 0 && raw.effort !== '0') {
    throw new InvalidOptionError('effort', `left out for ${format} (its encoder has no effort setting)`, raw.effort);
  }
  const effort = optionalInt(raw, 'effort', 0, MAX_EFFORT[format]) ?? DEFAULT_EFFORT[format];
  const params: ResizeParams = {
    fit,
    format,
    quality,
    effort,
    animated: bool(raw, 'animated'),
    keepMetadata: bool(raw, 'keepMetadata'),
  };
  if (width !== undefined) params.width = width;
  if (height !== undefined) params.height = height;
  return params;
}

function optionalInt(raw: Readonly<Record<string, unknown>>, name: string, min: number, max: number): number | undefined {
  const value = raw[name];
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new InvalidOptionError(name, `an integer between ${min} and ${max}`, value);
  }
  return n;
}

function choice<const T extends string>(raw: Readonly<Record<string, unknown>>, name: string, allowed: readonly T[], fallback: T): T {
  const value = raw[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidOptionError(name, `one of ${allowed.join(', ')}`, value);
  }
  return value as T;
}

function bool(raw: Readonly<Record<string, unknown>>, name: string): boolean {
  const value = raw[name];
  if (value === undefined || value === false || value === 'false' || value === '0') return false;
  if (value === true || value === 'true' || value === '1' || value === '') return true;
  throw new InvalidOptionError(name, 'true or false', value);
}
