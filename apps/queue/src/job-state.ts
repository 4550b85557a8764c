/**
 * How the Redis queue writes a job's state and the notices it sends producers.
 *
 * A job's state is one string (`<prefix>job:<id>`):
 * - pending: `p\n<entry id>\n<result ttl ms>\n<tenant>` (written by the ENQUEUE script);
 * - final: `<outcome>\n<info JSON>\n<result bytes>` (built here, stored as is by FINISH,
 *   so Redis copies the result once). JSON text never holds a raw newline, so the first
 *   two newlines delimit the header whatever the bytes that follow.
 *
 * A notice (one element of a producer's inbox list) is `<id byte length>:<id>`, followed
 * by the job's final value when it is small enough to travel with the notice (then the
 * producer needs no second read).
 */
import { type JobState, type LedgerEntry, type LedgerOutcome, QueueUnavailableError } from './types.ts';

const NEWLINE = 0x0a;
const PENDING = 0x70; // 'p'

/** The final value of a job: outcome, info JSON, result bytes. */
export function finalValue(outcome: LedgerOutcome, info: string, data?: Buffer): Buffer {
  const header = Buffer.from(`${outcome}\n${info}\n`);
  return data && data.length > 0 ? Buffer.concat([header, data]) : header;
}

/** Reads a job's state string; undefined for a missing key. */
export function parseState(id: string, value: Buffer | null | undefined): JobState | undefined {
  if (value === null || value === undefined) return undefined;
  if (value[0] === PENDING && value[1] === NEWLINE) return { id, status: 'pending' };
  const first = value.indexOf(NEWLINE);
  const second = first < 0 ? -1 : value.indexOf(NEWLINE, first + 1);
  const state = value.toString('latin1', 0, first < 0 ? Math.min(value.length, 32) : first);
  if (second < 0) throw new QueueUnavailableError(`job ${id} has an unreadable state ${JSON.stringify(state)}`);
  const info = (): unknown => JSON.parse(value.toString('utf8', first + 1, second));
  switch (state) {
    case 'done':
      return { id, status: 'done', data: value.subarray(second + 1), meta: info() as Record<string, unknown> };
    case 'failed':
      return { id, status: 'failed', error: info() as { code: string; message: string } };
    case 'expired':
    case 'cancelled':
      return { id, status: state };
    default:
      throw new QueueUnavailableError(`job ${id} has an unknown state ${JSON.stringify(state)}`);
  }
}

/** A notice for `id`, carrying its final value when given. */
export function noticeOf(id: string, value?: Buffer): Buffer {
  const head = Buffer.from(`${Buffer.byteLength(id)}:${id}`);
  return value ? Buffer.concat([head, value]) : head;
}

/** Reads a notice: the job id and, when it travelled with it, the job's final state. */
export function parseNotice(notice: Buffer): { id: string; state?: JobState } {
  const colon = notice.indexOf(0x3a);
  const end = colon + 1 + Number(notice.toString('latin1', 0, colon));
  const id = notice.toString('utf8', colon + 1, end);
  if (end >= notice.length) return { id };
  const state = parseState(id, notice.subarray(end));
  return state ? { id, state } : { id };
}

/** What a ledger record holds (`usage` as JSON text). */
export interface LedgerRecord {
  id: string;
  outcome: LedgerOutcome;
  attempt: number;
  tenant?: string | undefined;
  worker?: string | undefined;
  usage?: string | undefined;
  errorCode?: string | undefined;
  reason?: 'orphaned' | undefined;
}

/** One job's ledger record as the FINISH script stores it: JSON, `id` first. */
export function ledgerRecord(r: LedgerRecord): string {
  let out = `{"id":${JSON.stringify(r.id)},"outcome":"${r.outcome}","attempt":${r.attempt}`;
  if (r.tenant) out += `,"tenant":${JSON.stringify(r.tenant)}`;
  if (r.worker) out += `,"worker":${JSON.stringify(r.worker)}`;
  if (r.usage) out += `,"usage":${r.usage}`;
  if (r.errorCode) out += `,"error":${JSON.stringify(r.errorCode)}`;
  if (r.reason) out += `,"reason":"${r.reason}"`;
  return `${out}}`;
}

/**
 * The records of one ledger stream entry (one FINISH call): one `r` field per job, all
 * sharing the entry's time.
 */
export function parseLedgerEntry(entryId: string, fields: string[]): LedgerEntry[] {
  const finishedAt = Number(entryId.slice(0, entryId.indexOf('-')));
  const out: LedgerEntry[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] !== 'r') continue;
    const r = JSON.parse(fields[i + 1] as string) as Record<string, unknown>;
    const entry: LedgerEntry = { jobId: String(r.id), outcome: r.outcome as LedgerOutcome, finishedAt, attempt: Number(r.attempt ?? 0) };
    if (typeof r.tenant === 'string') entry.tenant = r.tenant;
    if (r.reason === 'orphaned') entry.reason = 'orphaned';
    if (typeof r.worker === 'string') entry.worker = r.worker;
    if (r.usage !== undefined) entry.usage = r.usage as Record<string, unknown>;
    if (typeof r.error === 'string') entry.errorCode = r.error;
    out.push(entry);
  }
  return out;
}
