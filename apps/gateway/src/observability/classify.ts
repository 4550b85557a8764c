/**
 * How the front door classifies a request: by route, by outcome (for yield), and by the
 * size of the image sent (for the latency SLO, which covers images under 1 MB).
 */

/** What became of a request, as the client sees it. */
export type Outcome = 'success' | 'client_error' | 'shed' | 'timeout' | 'upstream_failure';

/** Every {@link Outcome}; yield counts `success` against all but `client_error`. */
export const OUTCOMES: readonly Outcome[] = ['success', 'client_error', 'shed', 'timeout', 'upstream_failure'];

/** Which part of the API a request is for. */
export type Route = 'resize' | 'job' | 'other';

/** The size class of a request's body: the latency SLO covers `under_1mb`. */
export type SizeClass = 'under_1mb' | '1mb_and_over' | 'none' | 'unknown';

/** 1 MB, the latency SLO's image size bound, bytes. */
export const SLO_IMAGE_BYTES = 1_000_000;

/**
 * The outcome of an answer: 2xx/3xx `success`; 503 marked as a deliberate shed
 * (`x-ballast-shed`, from an API server's admission or the gateway's own throttle)
 * `shed`; 504 `timeout`; other 4xx (and 499, the client gone) `client_error`; every
 * other 5xx (500, 502, a 503 for no upstream or an unreachable queue) `upstream_failure`.
 */
export function outcomeOf(status: number, shed: boolean): Outcome {
  if (status < 400) return 'success';
  if (status === 503 && shed) return 'shed';
  if (status === 504) return 'timeout';
  if (status < 500) return 'client_error';
  return 'upstream_failure';
}

/** `resize` for `POST /v1/resize` and `POST /v1/renditions` (work the service does), `job` for `/v1/jobs/…` and `/v1/renditions/…`, `other` for the rest. */
export function routeOf(method: string, path: string): Route {
  if (path === '/v1/resize' || path === '/v1/renditions') return method === 'POST' ? 'resize' : 'other';
  return path.startsWith('/v1/jobs/') || path.startsWith('/v1/renditions/') ? 'job' : 'other';
}

/** Size class of a request from its declared `content-length` (`unknown` for a chunked upload). */
export function sizeClassOf(method: string, contentLength: string | null | undefined): SizeClass {
  if (contentLength === null || contentLength === undefined || contentLength === '') {
    return method === 'GET' || method === 'HEAD' || method === 'DELETE' ? 'none' : 'unknown';
  }
  if (!/^\d{1,15}$/.test(contentLength)) return 'unknown';
  const bytes = Number(contentLength);
  if (bytes === 0) return 'none';
  return bytes < SLO_IMAGE_BYTES ? 'under_1mb' : '1mb_and_over';
}
