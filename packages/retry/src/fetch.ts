import { func, nonEmptyString } from '@ballast/common';
import { type AttemptOutcome, defaultRetryOn, isConnectionError, type RetryClassifier } from './classify.ts';
import { RetryBudgetExhaustedError } from './errors.ts';
import { type RetryOptions, RetryPolicy } from './policy.ts';

/** Options of {@link retryingFetch}: the retry options, plus what to call and what is safe to repeat. */
export interface RetryingFetchOptions extends RetryOptions<Response> {
  /** The `fetch` to wrap. @default globalThis.fetch */
  fetch?: typeof fetch;
  /**
   * Methods safe to send twice, retried on any retryable outcome (RFC 9110 idempotent methods).
   * Other methods are retried only when the request never reached the server
   * ({@link isConnectionError}), or when they carry `idempotencyKeyHeader`.
   * @default ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']
   */
  idempotentMethods?: readonly string[];
  /** A request carrying this header is treated as idempotent whatever its method. @default 'idempotency-key' */
  idempotencyKeyHeader?: string;
}

/** A `fetch` with retries; `policy` gives its events and stats. */
export type RetryingFetch = ((input: string | URL | Request, init?: RequestInit) => Promise<Response>) & {
  readonly policy: RetryPolicy<Response>;
};

const IDEMPOTENT = ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'];

/**
 * Wraps `fetch` with retries. A response counts once its headers arrive: the retry
 * decision is made on the status and headers only, and the response is handed to the
 * caller before its body is read, so a request is never repeated after its body has
 * started streaming to the caller (a body that fails mid-stream fails for the caller).
 *
 * Retried: idempotent methods (or requests with an idempotency key) on network
 * errors, timeouts and 408/429/500/502/503/504 (honouring `Retry-After`); any method
 * when the connection was never made. Request bodies that are streams are sent once,
 * as they cannot be replayed. Discarded responses have their bodies cancelled.
 * When the budget refuses a retry after a response (a 503), that response is returned,
 * as when attempts run out (`budgetExhausted` and `giveUp` still report it); after an
 * error, the call rejects with {@link RetryBudgetExhaustedError} (`cause`: the error).
 * The caller's `init.signal` keeps cancelling the body after the response is returned.
 *
 * @example
 * ```ts
 * const fetchWithRetry = retryingFetch({ maxAttempts: 3, timeoutMs: 2_000, budget: ratioBudget() });
 * const res = await fetchWithRetry('https://api.example.com/users/42');
 * ```
 * @throws InvalidOptionError when an option is invalid.
 */
export function retryingFetch(options: RetryingFetchOptions = {}): RetryingFetch {
  const fetchImpl = options.fetch === undefined ? globalThis.fetch : func<typeof fetch>('fetch', options.fetch);
  const methods = new Set(
    (options.idempotentMethods ?? IDEMPOTENT).map((m, i) => nonEmptyString(`idempotentMethods[${i}]`, m).toUpperCase()),
  );
  const keyHeader = nonEmptyString('idempotencyKeyHeader', options.idempotencyKeyHeader ?? 'idempotency-key');
  const retryOn: RetryClassifier<Response> = options.retryOn === undefined ? defaultRetryOn : func('retryOn', options.retryOn);
  const userDiscard = options.discard;
  const policy = new RetryPolicy<Response>({
    ...options,
    discard: (response) => {
      userDiscard?.(response);
      response.body?.cancel().catch(() => {});
    },
  });
  const onlyUnsent = (outcome: AttemptOutcome<Response>): boolean => !outcome.ok && isConnectionError(outcome.error) && retryOn(outcome);
  const never = (): boolean => false;

  const wrapped = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = input instanceof Request ? input : undefined;
    const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
    const callerSignal = init?.signal ?? request?.signal ?? undefined;
    const hasKey = new Headers(init?.headers ?? request?.headers).has(keyHeader);
    const body = init?.body !== undefined ? init.body : request?.body;
    const classifier = !isReplayable(body, request) ? never : methods.has(method) || hasKey ? retryOn : onlyUnsent;
    return policy
      .execute(
        ({ signal }) => {
          // AbortSignal.any keeps following the caller's signal after the attempt has ended,
          // so the caller can still cancel the body of the response it receives.
          const attemptSignal = callerSignal ? AbortSignal.any([callerSignal, signal]) : signal;
          const target = request && request.body !== null ? request.clone() : input;
          return fetchImpl(target, { ...init, signal: attemptSignal });
        },
        { signal: callerSignal, retryOn: classifier },
      )
      .catch(lastResponse);
  };
  return Object.assign(wrapped, { policy });
}

/**
 * The budget refused to retry a response (a 503, a 429): the caller gets that response,
 * its status, headers and unread body, as when attempts run out. Errors stay errors.
 */
function lastResponse(error: unknown): Response {
  if (error instanceof RetryBudgetExhaustedError && error.lastValue !== undefined) return error.lastValue as Response;
  throw error;
}

/** A body fetch can send again: none, a string, bytes, a Blob, form data; not a stream nor an iterable. */
function isReplayable(body: unknown, request: Request | undefined): boolean {
  // A Request's own body is a stream, but an unread one can be cloned for every attempt.
  if (request !== undefined && body === request.body) return !request.bodyUsed;
  if (body === undefined || body === null) return true;
  return !(body instanceof ReadableStream) && !(typeof body === 'object' && Symbol.asyncIterator in body);
}
