import { createHash } from 'node:crypto';
import { InvalidOptionError } from '@ballast/common';

/** How a job ended, as far as billing cares: converted, or refused/failed by a worker. */
export type UsageOutcome = 'done' | 'failed';

/**
 * What one finished job cost: the unit of metering. One record per job — a job that ran
 * twice (delivery is at least once) yields the same {@link UsageRecord.recordId}, so the
 * store keeps one. Integers only (µs, bytes, px, epoch ms): sums are exact and billing
 * output is byte-identical on every run.
 */
export interface UsageRecord {
  /** `sha256("ballast.usage.v1\0" + jobId)`, first 32 hex digits: stable per job. */
  recordId: string;
  jobId: string;
  tenant: string;
  outcome: UsageOutcome;
  /** The failure's stable code when `outcome` is `failed`, else null. */
  errorCode: string | null;
  /** Worker (consumer) that finished the job. */
  worker: string;
  /** Delivery attempt that produced this record (1 unless the job was reclaimed). */
  attempt: number;
  /** CPU time attributed to the conversion, µs. */
  cpuUs: number;
  /** Wall time of the conversion, µs. */
  wallUs: number;
  bytesIn: number;
  bytesOut: number;
  /** Input pixels (width × height × frames read), 0 when the header could not be read. */
  pixelsIn: number;
  /** Output pixels (width × height, all frames), 0 for a failure. */
  pixelsOut: number;
  /** Input format from the header (`jpeg`, `png`…), null when unknown. */
  formatIn: string | null;
  /** Output format, null for a failure. */
  formatOut: string | null;
  /** Epoch ms. */
  enqueuedAt: number;
  /** Epoch ms: this attempt started. */
  startedAt: number;
  /** Epoch ms: the conversion ended (before the record was logged and the job acknowledged). */
  finishedAt: number;
  /** The request id the gateway assigned, for tracing; null when the producer set none. */
  requestId: string | null;
}

/**
 * What a worker reports about one finished job: the input of {@link toRecord}. The
 * `JobUsage` of `@ballast/app-worker` has this shape (kept structural so the worker does not
 * depend on this app, nor this app on the worker).
 */
export interface FinishedJob {
  jobId: string;
  /** Tenant from the job's params; `anonymous` when the producer set none. */
  tenant?: string;
  requestId?: string;
  worker: string;
  attempt: number;
  outcome: UsageOutcome;
  errorCode?: string;
  /** ms (fractions kept to the µs). */
  cpuMs: number;
  /** ms. */
  wallMs: number;
  bytesIn: number;
  bytesOut: number;
  pixelsIn?: number;
  pixelsOut?: number;
  formatIn?: string;
  /** Output format (for `done`). */
  format?: string;
  enqueuedAt: number;
  startedAt: number;
  finishedAt: number;
}

/** Tenant of jobs whose producer named none. */
export const ANONYMOUS_TENANT = 'anonymous';
const MAX_ID = 256;

/** The record id of a job: the same for every attempt of it. */
export function recordIdFor(jobId: string): string {
  return createHash('sha256').update('ballast.usage.v1\0').update(jobId).digest('hex').slice(0, 32);
}

/**
 * Builds the {@link UsageRecord} of a finished job, validating every field.
 * @throws {InvalidOptionError} naming the field that is missing or out of range.
 */
export function toRecord(job: FinishedJob): UsageRecord {
  const jobId = id('jobId', job.jobId);
  const outcome = job.outcome;
  if (outcome !== 'done' && outcome !== 'failed') throw new InvalidOptionError('outcome', '"done" or "failed"', outcome);
  return {
    recordId: recordIdFor(jobId),
    jobId,
    tenant: job.tenant === undefined ? ANONYMOUS_TENANT : id('tenant', job.tenant),
    outcome,
    errorCode: outcome === 'failed' ? id('errorCode', job.errorCode ?? 'ERR_BALLAST_IMAGE_FAILED') : null,
    worker: id('worker', job.worker),
    attempt: count('attempt', job.attempt, 1),
    cpuUs: micros('cpuMs', job.cpuMs),
    wallUs: micros('wallMs', job.wallMs),
    bytesIn: count('bytesIn', job.bytesIn),
    bytesOut: count('bytesOut', job.bytesOut),
    pixelsIn: count('pixelsIn', job.pixelsIn ?? 0),
    pixelsOut: count('pixelsOut', job.pixelsOut ?? 0),
    formatIn: job.formatIn === undefined ? null : id('formatIn', job.formatIn),
    formatOut: outcome === 'done' && job.format !== undefined ? id('format', job.format) : null,
    enqueuedAt: epochMs('enqueuedAt', job.enqueuedAt),
    startedAt: epochMs('startedAt', job.startedAt),
    finishedAt: epochMs('finishedAt', job.finishedAt),
    requestId: job.requestId === undefined ? null : id('requestId', job.requestId),
  };
}

/**
 * Checks that a value read back (from a log frame or a store row) is a whole
 * {@link UsageRecord} whose id matches its job; throws naming the first bad field.
 */
export function checkRecord(value: unknown): UsageRecord {
  if (typeof value !== 'object' || value === null) throw new InvalidOptionError('record', 'an object', value);
  const r = value as Record<string, unknown>;
  const nullable = (field: keyof UsageRecord): void => {
    if (r[field] !== null) id(field, r[field]);
  };
  id('recordId', r.recordId);
  id('jobId', r.jobId);
  if (r.recordId !== recordIdFor(r.jobId as string))
    throw new InvalidOptionError('recordId', `recordIdFor(${JSON.stringify(r.jobId)})`, r.recordId);
  id('tenant', r.tenant);
  if (r.outcome !== 'done' && r.outcome !== 'failed') throw new InvalidOptionError('outcome', '"done" or "failed"', r.outcome);
  nullable('errorCode');
  id('worker', r.worker);
  count('attempt', r.attempt, 1);
  for (const field of ['cpuUs', 'wallUs', 'bytesIn', 'bytesOut', 'pixelsIn', 'pixelsOut'] as const) count(field, r[field]);
  nullable('formatIn');
  nullable('formatOut');
  for (const field of ['enqueuedAt', 'startedAt', 'finishedAt'] as const) epochMs(field, r[field]);
  nullable('requestId');
  return r as unknown as UsageRecord;
}

function id(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID || hasControl(value)) {
    throw new InvalidOptionError(field, `a string of 1 to ${MAX_ID} printable characters`, value);
  }
  return value;
}

function hasControl(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function count(field: string, value: unknown, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionError(field, `an integer >= ${min}`, value);
  }
  return value;
}

function micros(field: string, ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) throw new InvalidOptionError(field, 'a finite number of ms >= 0', ms);
  return Math.round(ms * 1000);
}

/** Epoch ms between 2000 and 2200: catches seconds-for-ms and unset clocks. */
function epochMs(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 946_684_800_000 || value > 7_258_118_400_000) {
    throw new InvalidOptionError(field, 'epoch milliseconds (an integer between years 2000 and 2200)', value);
  }
  return value;
}
