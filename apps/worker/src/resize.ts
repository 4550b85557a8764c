import type { ResizeParams } from '@ballast/app-queue';
import { DEFAULT_INPUT_FORMATS, type InputFormat, inputFormatsOption, sniffImageFormat, unsupportedInput } from '@ballast/app-shared';
import { BallastError, durationMs, integer, isBallastError } from '@ballast/common';
import sharp, { type SharpOptions } from 'sharp';

/** Limits against hostile input. */
export interface ResizeLimits {
  /**
   * Largest input, in pixels (width × height × frames), checked from the header before
   * decoding: a decompression bomb is refused without allocating its pixels.
   * sharp's own default is 268 MP; this one is far lower.
   * @default 40_000_000
   */
  maxInputPixels?: number;
  /** Largest input, bytes. @default 10_485_760 (10 MiB) */
  maxInputBytes?: number;
  /**
   * Largest output, px (width × height × frames), computed before decoding from the input's
   * header and the resize parameters: a tiny input cannot ask for a huge output.
   * @default 40_000_000
   */
  maxOutputPixels?: number;
  /**
   * Largest AVIF output, px (width × height × frames), computed before encoding from the
   * input's header and the resize parameters. libvips cannot interrupt an AVIF encoder once
   * it runs, so `timeoutMs` does not bound its cost; this does. At the top effort (4) one
   * megapixel costs about 1.9 s of CPU on one core (7.4 s for 4 MP), so the default bounds an
   * AVIF conversion to about 2 s while admitting a 1024×1024 or 1280×800 image.
   * @default 1_048_576
   */
  maxAvifOutputPixels?: number;
  /**
   * Longest any conversion may run, ms: libvips stops it then (checked as it works) and the
   * job fails with `ERR_BALLAST_IMAGE_TIMEOUT`. A job's own deadline bounds it sooner (see
   * {@link conversionTimeoutMs}): nobody waits for its result after that.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Input formats converted, known by their first bytes before sharp sees the input, and
   * checked again against what sharp reads from the header; anything else fails with
   * `ERR_BALLAST_IMAGE_UNSUPPORTED`. SVG (librsvg parses it: untrusted XML) only when named.
   * @default ['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff']
   */
  inputFormats?: readonly InputFormat[];
}

/** Validated {@link ResizeLimits}. */
export type ResolvedLimits = Required<ResizeLimits>;

/** Validates {@link ResizeLimits} and fills in defaults. */
export function resolveLimits(limits: ResizeLimits = {}): ResolvedLimits {
  return {
    maxInputPixels: integer('maxInputPixels', limits.maxInputPixels ?? 40_000_000, { min: 1 }),
    maxInputBytes: integer('maxInputBytes', limits.maxInputBytes ?? 10 * 1024 * 1024, { min: 1 }),
    maxOutputPixels: integer('maxOutputPixels', limits.maxOutputPixels ?? 40_000_000, { min: 1 }),
    maxAvifOutputPixels: integer('maxAvifOutputPixels', limits.maxAvifOutputPixels ?? 1_048_576, { min: 1 }),
    timeoutMs: durationMs('timeoutMs', limits.timeoutMs ?? 30_000, { min: 1 }),
    inputFormats: inputFormatsOption(limits.inputFormats),
  };
}

/** What sharp calls each input format in `metadata().format` (AVIF is read by libheif). */
const SHARP_FORMAT: Readonly<Record<InputFormat, string>> = {
  jpeg: 'jpeg',
  png: 'png',
  webp: 'webp',
  avif: 'heif',
  gif: 'gif',
  tiff: 'tiff',
  svg: 'svg',
};

/** Refuses an input whose first bytes are not one of the accepted formats, before any decoder sees it. */
function checkInputFormat(input: Buffer, accepted: readonly InputFormat[]): InputFormat {
  const format = sniffImageFormat(input);
  if (format === undefined || !accepted.includes(format)) throw new ImageError('ERR_BALLAST_IMAGE_UNSUPPORTED', unsupportedInput(accepted));
  return format;
}

/** Stable codes of conversion failures; the API maps each to an HTTP status. */
export type ImageErrorCode =
  | 'ERR_BALLAST_IMAGE_UNSUPPORTED'
  | 'ERR_BALLAST_IMAGE_CORRUPT'
  | 'ERR_BALLAST_IMAGE_TOO_LARGE'
  | 'ERR_BALLAST_IMAGE_TIMEOUT'
  | 'ERR_BALLAST_IMAGE_FAILED'
  /** Stopped at the job's own deadline: the server ran out of the client's time, not the input's fault. */
  | 'ERR_BALLAST_DEADLINE';

/** A conversion failed because of its input (or ran too long). */
/** How a conversion that outlived its timeout ended: given up by libvips, or run to its end. */
export type ConversionEnd = 'stopped' | 'finished';

export class ImageError extends BallastError {
  declare readonly code: ImageErrorCode;
  /**
   * For a conversion stopped at its timeout (`ERR_BALLAST_IMAGE_TIMEOUT`, `ERR_BALLAST_DEADLINE`):
   * settles when libvips has really stopped. sharp's own timeout stops JPEG, PNG and WebP
   * work, but not an AVIF encoder once it runs, so a conversion can outlive its timeout; a
   * worker waits for this before it takes the next job, or abandoned conversions would pile
   * up on the cores. It resolves to `'stopped'` when libvips gave the conversion up,
   * `'finished'` when it ran to its end.
   */
  readonly stopped?: Promise<ConversionEnd>;
  constructor(code: ImageErrorCode, message: string, options?: ErrorOptions & { stopped?: Promise<ConversionEnd> }) {
    super(code, message, options);
    if (options?.stopped) this.stopped = options.stopped;
  }
}

/** True for an {@link ImageError} from any copy of this app. */
export function isImageError(value: unknown): value is ImageError {
  return value instanceof ImageError || (isBallastError(value) && value.code.startsWith('ERR_BALLAST_IMAGE_'));
}

/** The output of one conversion. */
export interface Converted {
  data: Buffer;
  format: ResizeParams['format'];
  width: number;
  height: number;
  /** What was read: the input's format and pixels (width × height × frames read), from its header. */
  input: { format: string; pixels: number };
}

/** What bounds one conversion's time, besides {@link ResizeLimits}. */
export interface ConversionBudget {
  /**
   * The job's deadline, epoch ms: the conversion is stopped there (or at `timeoutMs`,
   * whichever comes first), since no one waits for its result after it.
   */
  deadlineAt?: number;
  /** Wall clock, epoch ms. @default Date.now */
  now?: () => number;
}

/**
 * The time a conversion may run, ms: until the job's deadline, never over the configured
 * `timeoutMs`; 0 when the deadline has passed. A costly request (a large WebP or PNG at top
 * effort, say) then holds a worker slot no longer than its client waits for it.
 */
export function conversionTimeoutMs(limits: Pick<ResolvedLimits, 'timeoutMs'>, budget: ConversionBudget = {}): number {
  if (budget.deadlineAt === undefined) return limits.timeoutMs;
  const left = Math.floor(budget.deadlineAt - (budget.now ?? Date.now)());
  return Math.max(0, Math.min(limits.timeoutMs, left));
}

/** Why a conversion was stopped, for the client: the job's deadline, or the worker's own ceiling. */
/**
 * The error of a conversion stopped after `timeoutMs`: the job's deadline
 * (`ERR_BALLAST_DEADLINE`, the server's lack of time) when that came first, else the
 * ceiling `limits.timeoutMs` (`ERR_BALLAST_IMAGE_TIMEOUT`, the input's cost).
 */
function timeoutError(
  limits: ResolvedLimits,
  timeoutMs: number,
  options?: ErrorOptions & { stopped?: Promise<ConversionEnd> },
): ImageError {
  return timeoutMs < limits.timeoutMs
    ? new ImageError(
        'ERR_BALLAST_DEADLINE',
        `conversion ran past the job's deadline (${timeoutMs} ms left when it started) and was stopped`,
        options,
      )
    : new ImageError('ERR_BALLAST_IMAGE_TIMEOUT', `conversion took longer than ${limits.timeoutMs} ms and was stopped`, options);
}

/**
 * Resizes one image with sharp: auto-oriented, metadata stripped unless asked,
 * one frame unless asked, pixel and byte limits enforced, stopped at the job's deadline
 * (`budget`) or `limits.timeoutMs`, and sharp's errors turned into {@link ImageError}s
 * that say what was wrong with the input.
 */
export async function resizeImage(
  input: Buffer,
  params: ResizeParams,
  limits: ResolvedLimits,
  budget?: ConversionBudget,
): Promise<Converted> {
  const timeoutMs = conversionTimeoutMs(limits, budget);
  if (timeoutMs === 0) throw new ImageError('ERR_BALLAST_DEADLINE', 'the job’s deadline passed before its conversion started');
  if (input.byteLength > limits.maxInputBytes) {
    throw new ImageError('ERR_BALLAST_IMAGE_TOO_LARGE', `input is ${input.byteLength} bytes; the limit is ${limits.maxInputBytes}`);
  }
  const format = checkInputFormat(input, limits.inputFormats);
  const options: SharpOptions = {
    limitInputPixels: limits.maxInputPixels,
    failOn: 'warning', // a truncated or damaged file is an error, not a half-grey image
    pages: params.animated ? -1 : 1,
    sequentialRead: true,
  };
  const read = await checkOutputSize(input, options, params, limits, format);
  let image = sharp(input, options)
    // libvips stops work that runs longer (not an AVIF encoder already running: see below).
    .timeout({ seconds: Math.max(1, Math.ceil(timeoutMs / 1000)) })
    .rotate(); // auto-orient from EXIF, before the metadata is dropped
  if (params.width !== undefined || params.height !== undefined) {
    image = image.resize({ width: params.width, height: params.height, fit: params.fit });
  }
  if (params.keepMetadata) image = image.keepMetadata();
  switch (params.format) {
    case 'jpeg':
      image = image.jpeg({ quality: params.quality, mozjpeg: false });
      break;
    case 'png':
      image = image.png({ compressionLevel: params.effort });
      break;
    case 'webp':
      image = image.webp({ quality: params.quality, effort: params.effort });
      break;
    case 'avif':
      image = image.avif({ quality: params.quality, effort: params.effort });
      break;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const conversion = image.toBuffer({ resolveWithObject: true });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const stopped = conversion.then(
        (): ConversionEnd => 'finished',
        (): ConversionEnd => 'stopped',
      );
      reject(timeoutError(limits, timeoutMs, { stopped }));
    }, timeoutMs);
  });
  try {
    const { data, info } = await Promise.race([conversion, timeout]);
    return { data, format: params.format, width: info.width, height: info.height, input: read };
  } catch (error) {
    const failure = classify(error);
    if (failure.code !== 'ERR_BALLAST_IMAGE_TIMEOUT' || isImageError(error)) throw failure;
    throw timeoutError(limits, timeoutMs, { cause: error, stopped: Promise.resolve('stopped') }); // libvips' own timeout
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Refuses a conversion whose output would exceed `maxOutputPixels` (or, for AVIF,
 * `maxAvifOutputPixels`) before any pixel is decoded: the output size comes from the
 * input's header (auto-oriented, frames counted when `animated`) and the resize parameters.
 * Returns what the conversion will read (for usage records).
 */
async function checkOutputSize(
  input: Buffer,
  options: SharpOptions,
  params: ResizeParams,
  limits: ResolvedLimits,
  format: InputFormat,
): Promise<Converted['input']> {
  let meta: sharp.Metadata;
  try {
    meta = await sharp(input, options).metadata();
  } catch (error) {
    throw classify(error);
  }
  if (meta.format !== SHARP_FORMAT[format] || (format === 'avif' && meta.compression !== 'av1')) {
    throw new ImageError('ERR_BALLAST_IMAGE_UNSUPPORTED', unsupportedInput(limits.inputFormats));
  }
  const frames = params.animated ? Math.max(1, meta.pages ?? 1) : 1;
  const pageHeight = meta.pageHeight ?? meta.height;
  const swapped = meta.autoOrient.width !== meta.width; // EXIF orientation 5–8 turns it a quarter
  const size = outputSize(swapped ? pageHeight : meta.width, swapped ? meta.width : pageHeight, params);
  const pixels = size.width * size.height * frames;
  const avif = params.format === 'avif' && limits.maxAvifOutputPixels < limits.maxOutputPixels;
  const maxPixels = avif ? limits.maxAvifOutputPixels : limits.maxOutputPixels;
  if (pixels > maxPixels) {
    const output = `${size.width}×${size.height} px${frames > 1 ? ` × ${frames} frames` : ''}`;
    throw new ImageError(
      'ERR_BALLAST_IMAGE_TOO_LARGE',
      avif
        ? `AVIF output of ${output} exceeds the AVIF limit of ${maxPixels} px; ask for a smaller width or height, or another format`
        : `output of ${output} exceeds the limit of ${maxPixels} px`,
    );
  }
  return { format: meta.format ?? 'unknown', pixels: meta.width * pageHeight * frames };
}

/** The size sharp's `resize` gives an input of `width`×`height` for these parameters (no enlargement limit). */
export function outputSize(
  width: number,
  height: number,
  params: Pick<ResizeParams, 'width' | 'height' | 'fit'>,
): { width: number; height: number } {
  const w = params.width;
  const h = params.height;
  if (w === undefined && h === undefined) return { width, height };
  if (w === undefined) return { width: Math.max(1, Math.round((width * (h as number)) / height)), height: h as number };
  if (h === undefined) return { width: w, height: Math.max(1, Math.round((height * w) / width)) };
  if (params.fit !== 'inside' && params.fit !== 'outside') return { width: w, height: h };
  const scale = (params.fit === 'inside' ? Math.min : Math.max)(w / width, h / height);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * Turns a sharp/libvips error into an {@link ImageError} with a fixed message a client can
 * act on; what libvips said stays in `cause` (see {@link failureDetail}).
 */
export function classify(error: unknown): ImageError {
  if (isImageError(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/^timeout: /i.test(message)) {
    return new ImageError('ERR_BALLAST_IMAGE_TIMEOUT', 'conversion took too long and was stopped', { cause: error });
  }
  if (/unsupported image format/i.test(message)) {
    return new ImageError('ERR_BALLAST_IMAGE_UNSUPPORTED', unsupportedInput(DEFAULT_INPUT_FORMATS), { cause: error });
  }
  if (/pixel limit/i.test(message)) {
    return new ImageError('ERR_BALLAST_IMAGE_TOO_LARGE', 'input image has more pixels than allowed', { cause: error });
  }
  if (/premature end|corrupt|truncat|invalid|bad |damaged|not a |read error|unable to|vipsjpeg|pngload|libspng|webp|heif/i.test(message)) {
    return new ImageError('ERR_BALLAST_IMAGE_CORRUPT', 'input image is damaged or truncated', { cause: error });
  }
  return new ImageError('ERR_BALLAST_IMAGE_FAILED', 'the conversion failed', { cause: error });
}

/**
 * The first line of what libvips said about a failed conversion: for the worker's log,
 * never for the client (it can carry parser messages and paths).
 */
export function failureDetail(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  if (!(cause instanceof Error)) return undefined;
  return (cause.message.split('\n')[0] ?? '').slice(0, 200);
}
