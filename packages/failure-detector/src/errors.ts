import { BallastError, isBallastError } from '@ballast/common';

/** Stable codes of {@link FailureDetectorError}. */
export type FailureDetectorErrorCode = 'ERR_BALLAST_MONITOR_CLOSED' | 'ERR_BALLAST_HEARTBEAT_FAILED' | 'ERR_BALLAST_PROBE_FAILED';

/**
 * Base of the errors this package produces. `code` says which:
 * - `ERR_BALLAST_MONITOR_CLOSED`: a node was added to a closed {@link HeartbeatMonitor};
 * - `ERR_BALLAST_HEARTBEAT_FAILED`: a heartbeat could not be delivered (carried by the
 *   sender's `fail` event; `status` is set when the receiver answered);
 * - `ERR_BALLAST_PROBE_FAILED`: a health probe answered unhealthy or not at all (carried
 *   by the poller's `probe` event).
 */
export class FailureDetectorError extends BallastError {
  declare readonly code: FailureDetectorErrorCode;
  /** HTTP status of the answer, when there was one. */
  readonly status: number | undefined;

  constructor(code: FailureDetectorErrorCode, message: string, options?: ErrorOptions & { status?: number }) {
    super(code, message, options);
    this.status = options?.status;
  }
}

const CODES: ReadonlySet<string> = new Set<FailureDetectorErrorCode>([
  'ERR_BALLAST_MONITOR_CLOSED',
  'ERR_BALLAST_HEARTBEAT_FAILED',
  'ERR_BALLAST_PROBE_FAILED',
]);

/** True for a {@link FailureDetectorError}, also one from another copy of this package. */
export function isFailureDetectorError(value: unknown): value is FailureDetectorError {
  return isBallastError(value) && CODES.has(value.code);
}
