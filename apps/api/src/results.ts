import type { JobResult } from '@ballast/app-queue';
import { errorResponse } from '@ballast/app-shared';

const IMAGE_TYPES: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', avif: 'image/avif' };

/** HTTP status for a job failure code stored by a worker. */
export function statusForFailure(code: string): number {
  switch (code) {
    case 'ERR_BALLAST_INVALID_OPTION':
      return 400;
    case 'ERR_BALLAST_IMAGE_UNSUPPORTED':
      return 415;
    case 'ERR_BALLAST_IMAGE_TOO_LARGE':
      return 413;
    case 'ERR_BALLAST_IMAGE_CORRUPT':
    case 'ERR_BALLAST_IMAGE_TIMEOUT':
    case 'ERR_BALLAST_IMAGE_FAILED':
      return 422;
    case 'ERR_BALLAST_DEADLINE':
      return 504;
    default:
      return 500;
  }
}

/** The answer for a finished job: the image with its cost headers, or the failure's error body. */
export function resultResponse(result: Exclude<JobResult, { status: 'pending' }>): Response {
  switch (result.status) {
    case 'done': {
      const format = String(result.meta.format ?? 'jpeg');
      const headers = new Headers({ 'content-type': IMAGE_TYPES[format] ?? 'application/octet-stream' });
      setMetaHeaders(headers, result.meta);
      return new Response(result.data as Uint8Array<ArrayBuffer>, { status: 200, headers });
    }
    case 'failed':
      return errorResponse(statusForFailure(result.error.code), result.error.code, result.error.message);
    case 'expired':
      return errorResponse(504, 'ERR_BALLAST_DEADLINE', 'the job expired before a worker could take it');
    case 'cancelled':
      return errorResponse(410, 'ERR_BALLAST_CANCELLED', 'the job was cancelled');
  }
}

function setMetaHeaders(headers: Headers, meta: Record<string, unknown>): void {
  for (const key of ['cpuMs', 'wallMs', 'queuedMs'] as const) {
    const value = Number(meta[key]);
    if (Number.isFinite(value)) headers.set(`x-${key.replace('Ms', '-ms').toLowerCase()}`, value.toFixed(2));
  }
  if (meta.worker !== undefined) headers.set('x-worker', String(meta.worker));
}
