import { InvalidOptionError } from '@ballast/common';

/** Input formats the system knows by their first bytes; `svg` is accepted only where it is enabled by name. */
export type InputFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'gif' | 'tiff' | 'svg';

/** The input formats accepted by default: the documented ones. SVG (rendered by librsvg, a parser of untrusted XML) is not. */
export const DEFAULT_INPUT_FORMATS: readonly InputFormat[] = ['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff'];

function startsWith(data: Uint8Array, bytes: readonly number[], offset = 0): boolean {
  if (data.byteLength < offset + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (data[offset + i] !== bytes[i]) return false;
  return true;
}

function ascii(data: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...data.subarray(from, Math.min(to, data.byteLength)));
}

/** AVIF: an ISO-BMFF `ftyp` box whose major or compatible brands name `avif` or `avis`. */
function isAvif(data: Uint8Array): boolean {
  if (ascii(data, 4, 8) !== 'ftyp') return false;
  const size = Math.min(((data[0] ?? 0) << 24) | ((data[1] ?? 0) << 16) | ((data[2] ?? 0) << 8) | (data[3] ?? 0), data.byteLength, 256);
  for (let at = 8; at + 4 <= size; at += 4) {
    const brand = ascii(data, at, at + 4);
    if (brand === 'avif' || brand === 'avis') return true;
  }
  return false;
}

/** SVG: XML text (after an optional BOM and white space) with an `<svg` element near the start. */
function isSvg(data: Uint8Array): boolean {
  const head = Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, 4096))
    .toString('utf8')
    .replace(/^\uFEFF/, '')
    .trimStart();
  return head.startsWith('<') && /<svg[\s>]/i.test(head);
}

/**
 * The format of an image from its first bytes (magic numbers), without decoding it:
 * what an API server checks before a body reaches a decoder, and a worker again before
 * sharp sees it. `undefined` for anything else (text, PDF, HEIC, an unknown format).
 */
export function sniffImageFormat(data: Uint8Array): InputFormat | undefined {
  if (startsWith(data, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(data, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (ascii(data, 0, 6) === 'GIF87a' || ascii(data, 0, 6) === 'GIF89a') return 'gif';
  if (ascii(data, 0, 4) === 'RIFF' && ascii(data, 8, 12) === 'WEBP') return 'webp';
  if (startsWith(data, [0x49, 0x49, 0x2a, 0x00]) || startsWith(data, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (isAvif(data)) return 'avif';
  if (isSvg(data)) return 'svg';
  return undefined;
}

const NAMES: Readonly<Record<InputFormat, string>> = {
  jpeg: 'JPEG',
  png: 'PNG',
  webp: 'WebP',
  avif: 'AVIF',
  gif: 'GIF',
  tiff: 'TIFF',
  svg: 'SVG',
};

/** The message of a refused input, naming what is accepted. */
export function unsupportedInput(accepted: readonly InputFormat[]): string {
  return `input is not an image in an accepted format (${accepted.map((f) => NAMES[f]).join(', ')})`;
}

/** Every input format the system can accept, SVG included. */
export const INPUT_FORMATS: readonly InputFormat[] = ['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff', 'svg'];

/**
 * Validates an `inputFormats` option (the gateway's, the API's, the workers'): the
 * default list when unset.
 * @throws {InvalidOptionError} for an empty list or an unknown format.
 */
export function inputFormatsOption(value: readonly InputFormat[] | undefined): readonly InputFormat[] {
  if (value === undefined) return DEFAULT_INPUT_FORMATS;
  if (!Array.isArray(value) || value.length === 0 || value.some((f) => !INPUT_FORMATS.includes(f))) {
    throw new InvalidOptionError('inputFormats', `a non-empty list of ${INPUT_FORMATS.join(', ')}`, value);
  }
  return value;
}
