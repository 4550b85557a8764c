/**
 * The codes of the errors `@ballast/common` throws; each package exports the union of its
 * own (`CircuitBreakerErrorCode`, `RetryErrorCode`…), so `switch (error.code)` narrows.
 */
export type CommonErrorCode = 'ERR_BALLAST_INVALID_OPTION' | 'ERR_BALLAST_TIMEOUT' | 'ERR_BALLAST_POLICY_CLOSED';

/**
 * Base of every error Ballast throws. `code` is stable across releases;
 * `isBallastError` recognises errors from any copy of any Ballast package.
 */
export class BallastError extends Error {
  /** A stable, machine-readable code such as `ERR_BALLAST_INVALID_OPTION`. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * True for an error thrown by any Ballast package, even from another copy of it
 * (two versions installed side by side): the test is the `ERR_BALLAST_` code
 * prefix, not `instanceof`.
 */
export function isBallastError(value: unknown): value is BallastError {
  if (!(value instanceof Error)) return false;
  const code: unknown = (value as Error & { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('ERR_BALLAST_');
}

/**
 * Thrown when an option or argument is invalid. The message names the option and the
 * value received, e.g. `timeoutMs must be a finite number >= 0, got -1`.
 */
export class InvalidOptionError extends BallastError {
  declare readonly code: 'ERR_BALLAST_INVALID_OPTION';
  /** The option or argument that was wrong, e.g. `timeoutMs`. */
  readonly option: string;
  constructor(option: string, expected: string, received: unknown) {
    super('ERR_BALLAST_INVALID_OPTION', `${option} must be ${expected}, got ${describe(received)}`);
    this.option = option;
  }
}

/** True for an {@link InvalidOptionError} from any copy of Ballast. */
export function isInvalidOptionError(value: unknown): value is InvalidOptionError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_INVALID_OPTION';
}

/** Thrown by a policy after `close()`: new calls are refused, and calls in flight are aborted with it. */
export class PolicyClosedError extends BallastError {
  declare readonly code: 'ERR_BALLAST_POLICY_CLOSED';
  /** What was closed, e.g. `timeout`. */
  readonly policy: string;
  constructor(policy: string) {
    super('ERR_BALLAST_POLICY_CLOSED', `${policy} policy is closed`);
    this.policy = policy;
  }
}

/** True for a {@link PolicyClosedError} from any copy of Ballast. */
export function isPolicyClosedError(value: unknown): value is PolicyClosedError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_POLICY_CLOSED';
}

/**
 * Runs `fn` with stack trace capture switched off, for errors built on hot paths
 * (rejections while a breaker is open, shed requests) where the stack is never read
 * and would cost microseconds.
 */
export function withoutStack<T>(fn: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return fn();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return String(value);
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}
