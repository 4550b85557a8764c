import { API_TIMING, serverTiming, TENANT_HEADER } from '@ballast/app-shared';

/** When an API request crossed each of its marks, `performance.now()`. */
export interface ApiMarks {
  started: number;
  /** Admitted (authenticated, validated, through admission control). */
  admittedAt?: number;
  /** Its job acknowledged by the queue. */
  enqueuedAt?: number;
}

/**
 * Sets the answer's `Server-Timing` (the API's stages: `admission`, `enqueue`, and for a
 * finished sync job the worker's `queue_wait` and `conversion` from its result headers,
 * plus `api`, the whole time here) and the tenant header the gateway labels its metrics
 * with. Returns the stages, ms, for the request's log line.
 */
export function setTimingHeaders(response: Response, marks: ApiMarks, tenant: string, totalMs: number): Record<string, number> {
  const { started, admittedAt, enqueuedAt } = marks;
  const queued = response.headers.get('x-queued-ms');
  const wall = response.headers.get('x-wall-ms');
  const stages: Record<string, number> = {};
  if (admittedAt !== undefined) stages.admission = round(admittedAt - started);
  if (admittedAt !== undefined && enqueuedAt !== undefined) stages.enqueue = round(enqueuedAt - admittedAt);
  if (queued !== null && Number.isFinite(Number(queued))) stages.queue_wait = Number(queued);
  if (wall !== null && Number.isFinite(Number(wall))) stages.conversion = Number(wall);
  response.headers.set('server-timing', serverTiming({ ...stages, [API_TIMING]: totalMs }));
  response.headers.set(TENANT_HEADER, tenant);
  return stages;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
