import { createHash, randomUUID } from 'node:crypto';
import { FORMATS, MAX_DIMENSION, MAX_EFFORT } from '@ballast/app-queue';
import { MAX_RENDITIONS } from './params.ts';
import type { Format } from './plan.ts';

/** What became of one rendition when the set was accepted (before any job ran). */
export type EntryState = 'queued' | 'dropped-format' | 'dropped-width' | 'shed';
const STATES: readonly EntryState[] = ['queued', 'dropped-format', 'dropped-width', 'shed'];

/** One rendition of a set, as its id records it. */
export interface SetEntry {
  width: number;
  format: Format;
  /** Effort asked. */
  effort: number;
  /** Effort planned (lower once degraded). */
  plannedEffort: number;
  state: EntryState;
}

/** A decoded set id. */
export interface RenditionSet {
  id: string;
  tenant: string;
  /** The set's own uuid, from which its job ids derive. */
  uuid: string;
  entries: SetEntry[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const VERSION = 1;

/** A new set's uuid. */
export function newSetUuid(): string {
  return randomUUID();
}

/**
 * A set id: `<tenant>-<uuid>-<entries>`, the entries packed in 4 bytes each (base64url).
 * A set needs no storage of its own — any API server can answer
 * `GET /v1/renditions/<id>` by reading the jobs the id names — and it belongs to its
 * tenant, as job ids do: another tenant's id is refused before the queue is read.
 */
export function encodeSetId(tenant: string, uuid: string, entries: readonly SetEntry[]): RenditionSet {
  const bytes = Buffer.alloc(1 + entries.length * 4);
  bytes[0] = VERSION;
  entries.forEach((e, i) => {
    const at = 1 + i * 4;
    bytes.writeUInt16BE(e.width, at);
    bytes[at + 2] = (FORMATS.indexOf(e.format) << 4) | e.effort;
    bytes[at + 3] = (STATES.indexOf(e.state) << 4) | e.plannedEffort;
  });
  return { id: `${tenant}-${uuid}-${bytes.toString('base64url')}`, tenant, uuid, entries: [...entries] };
}

/** Decodes a set id that belongs to `tenant`; undefined for another tenant's, or anything malformed. */
export function readSetId(tenant: string, id: string): RenditionSet | undefined {
  if (id.length > 512 || !id.startsWith(`${tenant}-`)) return undefined;
  // The uuid's fixed shape pins where the tenant ends: tenant `a` cannot read the sets of a tenant `a-b`.
  const rest = id.slice(tenant.length + 1);
  if (rest[36] !== '-' || !UUID.test(rest.slice(0, 36))) return undefined;
  const packed = rest.slice(37);
  if (!/^[A-Za-z0-9_-]+$/.test(packed)) return undefined;
  const bytes = Buffer.from(packed, 'base64url');
  const count = (bytes.length - 1) / 4;
  if (bytes[0] !== VERSION || !Number.isInteger(count) || count < 1 || count > MAX_RENDITIONS) return undefined;
  const entries: SetEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = 1 + i * 4;
    const format = FORMATS[(bytes[at + 2] as number) >> 4];
    const state = STATES[(bytes[at + 3] as number) >> 4];
    const width = bytes.readUInt16BE(at);
    const effort = (bytes[at + 2] as number) & 15;
    const plannedEffort = (bytes[at + 3] as number) & 15;
    if (!format || !state || width < 1 || width > MAX_DIMENSION || effort > MAX_EFFORT[format] || plannedEffort > effort) return undefined;
    entries.push({ width, format, effort, plannedEffort, state });
  }
  return { id, tenant, uuid: rest.slice(0, 36), entries };
}

/**
 * The job id of rendition `index` of the set with uuid `uuid`: `<tenant>-<uuid>` (the
 * shape of every job id, owned by the tenant), derived from the set's, so it needs no storage.
 */
export function renditionJobId(tenant: string, uuid: string, index: number): string {
  const hex = createHash('sha256').update(`${uuid}:${index}`).digest('hex');
  return `${tenant}-${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
