import { isInvalidOptionError, type PolicyOutcome } from '@ballast/common';
import isNetworkErrorImport from 'is-network-error';
import { AbortError as PRetryAbortError } from 'p-retry';
import { isRetryError } from './errors.ts';
import { esmDefault } from './interop.ts';

const isNetworkError = esmDefault(isNetworkErrorImport);

/** What one attempt produced: a value (`ok: true`) or an error. `attempt` counts from 1. A {@link PolicyOutcome} with its attempt. */
export type AttemptOutcome<T> = PolicyOutcome<T> & { readonly attempt: number };

/** @deprecated Renamed {@link AttemptOutcome} (the load balancer's outcome is another thing); this alias goes in the next major version. */
export type Outcome<T> = AttemptOutcome<T>;

/**
 * Decides whether an outcome is worth another attempt: `true` retries (an error, or
 * a value such as a 503 response), `false` ends the call with this outcome.
 */
export type RetryClassifier<T> = (outcome: AttemptOutcome<T>) => boolean;

/** HTTP statuses retried by default: timeout, rate limit, and the transient 5xx. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

// Socket errors that mean the request never left this host or never reached a listening upstream.
const NEVER_SENT: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * The default classifier. Values are retried only when they look like an HTTP
 * response with a status in {@link RETRYABLE_STATUSES}. Errors are retried except:
 * p-retry's `AbortError` (p-retry's way to stop at once; it still works here), a
 * `TypeError` that is not a network error (p-retry's rule: a bug, not an outage),
 * an `AbortError`-named error, invalid options, Ballast's own retry errors, errors
 * marked `retryable: false`, and errors carrying an HTTP status not in the retryable set.
 *
 * Compose it to change one case:
 * `retryOn: (o) => (o.ok ? o.value.status === 503 : defaultRetryOn(o))`.
 */
export function defaultRetryOn(outcome: AttemptOutcome<unknown>): boolean {
  return outcome.ok ? isRetryableResponse(outcome.value) : isRetryableError(outcome.error);
}

/** True for a response-like value (`status` number) with a retryable status. */
export function isRetryableResponse(value: unknown): boolean {
  const status = (value as { status?: unknown } | null)?.status;
  return typeof status === 'number' && typeof (value as { headers?: unknown }).headers === 'object' && RETRYABLE_STATUSES.has(status);
}

/** The error half of {@link defaultRetryOn}. */
export function isRetryableError(error: unknown): boolean {
  if (error instanceof PRetryAbortError) return false;
  if (error instanceof TypeError) return isNetworkError(error);
  if (!(error instanceof Error)) return true;
  if (error.name === 'AbortError' || isInvalidOptionError(error) || isRetryError(error)) return false;
  const e = error as Error & { retryable?: unknown; status?: unknown; statusCode?: unknown; response?: { status?: unknown } };
  if (e.retryable === false) return false;
  const status = e.status ?? e.statusCode ?? e.response?.status;
  return typeof status === 'number' ? RETRYABLE_STATUSES.has(status) : true;
}

/**
 * True when an error (or one of its causes) says the request never reached the
 * upstream: connection refused, name not resolved, host unreachable, connect
 * timeout. Such a request is safe to send again, to the same or another upstream,
 * whatever its method.
 */
export function isConnectionError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NEVER_SENT.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
