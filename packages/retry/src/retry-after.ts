import type { AttemptOutcome } from './classify.ts';

/** Fetch `Headers`, or a plain record of header values such as Node's `IncomingHttpHeaders`. */
export type HeadersLike = { get(name: string): string | null } | Record<string, string | string[] | number | undefined>;

const DELTA_SECONDS = /^\s*(\d+)\s*$/;
const ZONE = /\b(?:GMT|UTC|UT|Z)\s*$|[+-]\d{2}:?\d{2}\s*$/i;

/**
 * Parses a `Retry-After` value, delta-seconds (`"120"`) or an HTTP date
 * (`"Wed, 21 Oct 2026 07:28:00 GMT"`, or the obsolete RFC 850 and asctime forms, all
 * read as GMT whatever the local time zone), into a delay in ms from `now`.
 * A date in the past gives 0; anything unparsable gives `undefined`.
 *
 * @param now wall-clock time in ms since the epoch, for the date form. @default Date.now()
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const seconds = DELTA_SECONDS.exec(value);
  if (seconds) return Number(seconds[1]) * 1000;
  // Every HTTP date form names its month; without that check Date.parse('-5') is the year -5.
  if (!/[a-z]{3}/i.test(value)) return undefined;
  // HTTP dates are GMT, but the asctime form names no zone and Date.parse would read it as local time.
  const date = Date.parse(ZONE.test(value) ? value : `${value} GMT`);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * The delay a response asks for, in ms: `Retry-After` (either form) first; otherwise,
 * when the response is a 429 or says no requests remain, the reset of the IETF
 * rate-limit headers: `RateLimit-Reset` (delta-seconds) or the `t=` / `reset=`
 * parameter of `RateLimit`. `undefined` when the response hints nothing.
 *
 * @param status the response status, to read rate-limit resets on a 429.
 * @param now wall-clock time for HTTP dates. @default Date.now()
 */
export function delayFromHeaders(headers: HeadersLike, status?: number, now: number = Date.now()): number | undefined {
  const retryAfter = parseRetryAfter(header(headers, 'retry-after'), now);
  if (retryAfter !== undefined) return retryAfter;
  const rateLimit = header(headers, 'ratelimit');
  const remaining = header(headers, 'ratelimit-remaining') ?? /(?:^|[;,\s])(?:r|remaining)=(\d+)/.exec(rateLimit ?? '')?.[1];
  if (status !== 429 && remaining?.trim() !== '0') return undefined;
  const reset = header(headers, 'ratelimit-reset') ?? /(?:^|[;,\s])(?:t|reset)=(\d+)/.exec(rateLimit ?? '')?.[1];
  const seconds = reset === undefined ? undefined : DELTA_SECONDS.exec(reset);
  return seconds ? Number(seconds[1]) * 1000 : undefined;
}

/**
 * The default `delayHint`: reads the server's hint from an outcome. A result that
 * looks like an HTTP response (`status` and `headers`) is read with
 * {@link delayFromHeaders}; an error may carry the hint as a `retryAfterMs` number,
 * or carry a response (`error.response`, as ky and got errors do) or `error.headers`.
 */
export function defaultDelayHint(outcome: AttemptOutcome<unknown>): number | undefined {
  if (outcome.ok) return responseHint(outcome.value);
  const error = outcome.error as { retryAfterMs?: unknown; response?: unknown; headers?: unknown } | null;
  if (typeof error !== 'object' || error === null) return undefined;
  if (typeof error.retryAfterMs === 'number' && error.retryAfterMs >= 0) return error.retryAfterMs;
  return responseHint(error.response) ?? (isHeaders(error.headers) ? delayFromHeaders(error.headers) : undefined);
}

function responseHint(value: unknown): number | undefined {
  const response = value as { status?: unknown; headers?: unknown } | null;
  if (typeof response !== 'object' || response === null || !isHeaders(response.headers)) return undefined;
  return delayFromHeaders(response.headers, typeof response.status === 'number' ? response.status : undefined);
}

function isHeaders(value: unknown): value is HeadersLike {
  return typeof value === 'object' && value !== null;
}

function header(headers: HeadersLike, name: string): string | undefined {
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  const value = (headers as Record<string, unknown>)[name];
  if (Array.isArray(value)) return value[0] === undefined ? undefined : String(value[0]);
  return value === undefined || value === null ? undefined : String(value);
}
