/**
 * Per-stage timings carried between services in a `Server-Timing` response header
 * (`name;dur=ms`, W3C Server Timing): the API reports its stages, the worker's queue wait
 * and conversion, and the gateway turns them into per-stage histograms and a request's
 * timeline. Browsers show the header in their network panel too.
 */

/**
 * The stages of a request, in the order it crosses them:
 * - `gateway`: at the gateway, before and after the API server's part (reading the body,
 *   picking an upstream, the hops);
 * - `admission`: at the API server, from arrival to admitted (authentication, validation,
 *   admission control);
 * - `enqueue`: reading the body and enqueueing the job until the queue acknowledged it
 *   (replicated, in Redis mode);
 * - `queue_wait`: the job waiting in the queue for a worker;
 * - `conversion`: the worker converting the image;
 * - `response`: from the answer's headers to its last byte sent to the client.
 */
export const STAGES: readonly ['gateway', 'admission', 'enqueue', 'queue_wait', 'conversion', 'response'] = [
  'gateway',
  'admission',
  'enqueue',
  'queue_wait',
  'conversion',
  'response',
];

/** One of {@link STAGES}. */
export type Stage = (typeof STAGES)[number];

/** The API server's own entry in `Server-Timing`: its whole time on the request. */
export const API_TIMING = 'api';

/** Response header naming the tenant the API server authenticated (for per-tenant metrics at the gateway). */
export const TENANT_HEADER = 'x-ballast-tenant';

/**
 * Response header with the harvest of an answer that can be partial: the share of the
 * data asked for that the answer holds, 0–1. Absent means complete (1).
 */
export const HARVEST_HEADER = 'x-ballast-harvest';

const NAME = /^[a-z][a-z0-9_]{0,31}$/;
const MAX_HEADER = 1024;
const MAX_ENTRIES = 16;

/** Formats timings, ms, as a `Server-Timing` value (`admission;dur=1.2, enqueue;dur=3.4`); non-finite or negative ones are left out. */
export function serverTiming(timings: Readonly<Record<string, number | undefined>>): string {
  const parts: string[] = [];
  for (const [name, ms] of Object.entries(timings)) {
    if (ms === undefined || !(ms >= 0) || ms === Number.POSITIVE_INFINITY || !NAME.test(name)) continue;
    parts.push(`${name};dur=${Math.round(ms * 100) / 100}`);
  }
  return parts.join(', ');
}

/**
 * Reads a `Server-Timing` value into durations, ms, by name. Tolerant and bounded: only
 * the first 1 KiB and 16 entries are read, names must be lower-case tokens, and entries
 * without a valid `dur` are skipped, so a malformed header costs nothing and breaks nothing.
 */
export function parseServerTiming(header: string | readonly string[] | null | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (header === null || header === undefined) return out;
  const text = (typeof header === 'string' ? header : header.join(',')).slice(0, MAX_HEADER);
  let entries = 0;
  for (const entry of text.split(',')) {
    if (++entries > MAX_ENTRIES) break;
    const [rawName, ...params] = entry.split(';');
    const name = rawName?.trim() ?? '';
    if (!NAME.test(name)) continue;
    for (const param of params) {
      const [key, value] = param.split('=');
      if (key?.trim() !== 'dur' || value === undefined) continue;
      const ms = Number(value.trim());
      if (Number.isFinite(ms) && ms >= 0) out[name] = ms;
    }
  }
  return out;
}

/** The harvest an answer declares in {@link HARVEST_HEADER}: 1 when absent, clamped to 0–1, 1 when malformed. */
export function harvestOf(header: string | null | undefined): number {
  if (header === null || header === undefined || header === '') return 1;
  const value = Number(header);
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 1;
}
