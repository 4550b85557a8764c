/**
 * What every Ballast HTTP surface answers on an error: `{ "error": { "code", "message" } }`,
 * `code` being a stable machine-readable string (`ERR_BALLAST_SHED`), `message` a sentence
 * for humans. Extra members (a shed `reason`, a `requestId`) may sit beside them.
 */
export interface ErrorBody<C extends string = string> {
  error: { code: C; message: string; [detail: string]: unknown };
}

/**
 * The error body of an answer: `{ error: { code, message, ...details } }`.
 *
 * @example
 * ```ts
 * return c.json(errorBody('ERR_BALLAST_SHED', 'the server is at its limit', { reason: 'queueFull' }), 503);
 * ```
 */
export function errorBody<C extends string>(code: C, message: string, details?: Record<string, unknown>): ErrorBody<C> {
  return { error: details === undefined ? { code, message } : { ...details, code, message } };
}

/**
 * The value of a `Retry-After` header (RFC 9110, delta-seconds) for a delay in ms: whole
 * seconds, rounded up, at least 1 (a `Retry-After: 0` invites an immediate retry storm).
 * A delay that is not a finite number gives 1.
 */
export function retryAfterSeconds(delayMs: number): number {
  if (!(delayMs > 0) || !Number.isFinite(delayMs)) return 1;
  return Math.max(1, Math.ceil(delayMs / 1000));
}

/**
 * An error answer as a framework adapter sends it: status, extra headers and the
 * {@link ErrorBody}. Ballast's Hono, Express and Fastify adapters build their default
 * rejections as one of these, so the three answer alike.
 */
export interface ErrorAnswer<C extends string = string> {
  /** The HTTP status. */
  status: number;
  /** Headers beside `content-type` (`Retry-After`, say). */
  headers: Record<string, string>;
  /** The JSON body. */
  body: ErrorBody<C>;
}

/**
 * An {@link ErrorAnswer}: `status`, the body `{ error: { code, message, ...details } }`, and `headers`.
 *
 * @example
 * ```ts
 * const answer = errorAnswer(503, 'ERR_BALLAST_SHED', 'the server is at its limit', { 'Retry-After': '2' });
 * ```
 */
export function errorAnswer<C extends string>(
  status: number,
  code: C,
  message: string,
  headers: Record<string, string> = {},
  details?: Record<string, unknown>,
): ErrorAnswer<C> {
  return { status, headers, body: errorBody(code, message, details) };
}
