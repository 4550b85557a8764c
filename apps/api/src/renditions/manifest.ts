import type { JobState } from '@ballast/app-queue';
import { statusForFailure } from '../results.ts';
import type { DegradationStage } from './plan.ts';
import { type RenditionSet, renditionJobId } from './set-id.ts';

/** Why a rendition asked for is not in an answer. */
export type MissingReason = 'degraded' | 'shed' | 'deadline' | 'too_large' | 'failed' | 'cancelled';

/** Every {@link MissingReason}, for metrics. */
export const MISSING_REASONS: readonly MissingReason[] = ['degraded', 'shed', 'deadline', 'too_large', 'failed', 'cancelled'];

/** One rendition in a manifest. */
export interface ManifestEntry {
  width: number;
  format: string;
  /** The effort it was (or will be) encoded at. */
  effort: number;
  /** Present when lower than asked: the effort asked for. */
  requestedEffort?: number;
  status: 'done' | 'pending' | 'missing';
  /** Why it is missing. */
  reason?: MissingReason;
  /** For `degraded`: the stage that dropped it. */
  stage?: Exclude<DegradationStage, 'effort'>;
  /** For `failed` and `too_large`: the worker's error. */
  error?: { code: string; message: string };
  /** Where the image is (done), or will be (pending): `GET` it with the same key. */
  url?: string;
  /** Size of the image, bytes (done). */
  bytes?: number;
  contentType?: string;
}

/** A rendition set's manifest: what was asked, what is there, and why the rest is not. */
export interface Manifest {
  /** The set's id: `GET /v1/renditions/<id>` reads this manifest again as renditions finish. */
  id: string;
  /** `complete`: every rendition; `partial`: some; `pending`: some still being made (async); `failed`: none. */
  status: 'complete' | 'partial' | 'pending' | 'failed';
  asked: number;
  delivered: number;
  /** delivered ÷ asked. */
  harvest: number;
  /** Renditions each degradation stage touched when the set was accepted. */
  degraded: Record<DegradationStage, number>;
  renditions: ManifestEntry[];
}

const TYPES: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', avif: 'image/avif' };

/**
 * The manifest of `set` given the state of each of its jobs (`states[i]` for entry `i`;
 * ignored for entries never enqueued). `final`: the answer is the last word on the set (a
 * sync answer at its deadline): jobs still pending are reported missing for `deadline`.
 */
export function buildManifest(set: RenditionSet, states: readonly (JobState | undefined)[], final: boolean): Manifest {
  const degraded: Record<DegradationStage, number> = { effort: 0, format: 0, width: 0 };
  const renditions = set.entries.map((entry, i): ManifestEntry => {
    const out: ManifestEntry = { width: entry.width, format: entry.format, effort: entry.plannedEffort, status: 'missing' };
    if (entry.plannedEffort < entry.effort) {
      out.requestedEffort = entry.effort;
      degraded.effort++;
    }
    if (entry.state === 'dropped-format' || entry.state === 'dropped-width') {
      const stage = entry.state === 'dropped-format' ? 'format' : 'width';
      degraded[stage]++;
      return Object.assign(out, { reason: 'degraded', stage });
    }
    if (entry.state === 'shed') return Object.assign(out, { reason: 'shed' });
    return Object.assign(out, jobEntry(states[i], renditionJobId(set.tenant, set.uuid, i), final));
  });
  const delivered = renditions.filter((r) => r.status === 'done').length;
  const pending = renditions.some((r) => r.status === 'pending');
  const status = pending ? 'pending' : delivered === renditions.length ? 'complete' : delivered > 0 ? 'partial' : 'failed';
  return { id: set.id, status, asked: renditions.length, delivered, harvest: round(delivered / renditions.length), degraded, renditions };
}

function jobEntry(state: JobState | undefined, jobId: string, final: boolean): Partial<ManifestEntry> {
  const url = `/v1/jobs/${jobId}`;
  switch (state?.status) {
    case 'done':
      return {
        status: 'done',
        url,
        bytes: state.data.byteLength,
        contentType: TYPES[String(state.meta.format)] ?? 'application/octet-stream',
      };
    case 'failed': {
      const status = statusForFailure(state.error.code);
      // Stopped at its deadline: late, as a job that expired in the queue is, not a failure of its input.
      if (status === 504) return { status: 'missing', reason: 'deadline' };
      return { status: 'missing', reason: status === 413 ? 'too_large' : 'failed', error: state.error };
    }
    case 'expired':
      return { status: 'missing', reason: 'deadline' };
    case 'cancelled':
      return { status: 'missing', reason: final ? 'deadline' : 'cancelled' };
    case 'pending':
      return final ? { status: 'missing', reason: 'deadline', url } : { status: 'pending', url };
    default:
      // Unknown: its result expired, or it never was enqueued (a forged or stale id).
      return { status: 'missing', reason: 'deadline' };
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
