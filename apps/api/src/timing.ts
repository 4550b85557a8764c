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
 * with.
 */
export function setTimingHeaders(response: Response, marks: ApiMarks, tenant: string, totalMs: number): void {
  const { started, admittedAt, enqueuedAt } = marks;
  const queued = response.headers.get('x-queued-ms');
  const wall = response.headers.get('x-wall-ms');
  response.headers.set(
    'server-timing',
    serverTiming({
      admission: admittedAt === undefined ? undefined : admittedAt - started,
      enqueue: admittedAt === undefined || enqueuedAt === undefined ? undefined : enqueuedAt - admittedAt,
      queue_wait: queued === null ? undefined : Number(queued),
      conversion: wall === null ? undefined : Number(wall),
      [API_TIMING]: totalMs,
    }),
  );
  response.headers.set(TENANT_HEADER, tenant);
}
