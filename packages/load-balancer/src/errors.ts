import { BallastError, isBallastError } from '@ballast/common';

/** The codes of this package's own errors (`@ballast/common`'s are `CommonErrorCode`). */
export type LoadBalancerErrorCode =
  | 'ERR_BALLAST_NO_ENDPOINT'
  | 'ERR_BALLAST_UPSTREAM'
  /** In a proxy's 400 answer: a request target that is not a path, or names another host than `Host`. */
  | 'ERR_BALLAST_BAD_REQUEST';

/** Why {@link NoEndpointAvailableError} was thrown. */
export type NoEndpointReason =
  /** The balancer holds no endpoint at all. */
  | 'empty'
  /** Every endpoint is draining, or unhealthy with the panic threshold disabled. */
  | 'unavailable'
  /** `close()` was called. */
  | 'closed';

/**
 * Thrown by `pick()` when no endpoint can take the request. Built without a stack
 * trace: it is an expected outcome on a hot path, not a bug.
 */
export class NoEndpointAvailableError extends BallastError {
  declare readonly code: 'ERR_BALLAST_NO_ENDPOINT';
  /** Why no endpoint was available. */
  readonly reason: NoEndpointReason;
  constructor(reason: NoEndpointReason, message: string = describeReason(reason)) {
    super('ERR_BALLAST_NO_ENDPOINT', message);
    this.reason = reason;
  }
}

/** True for a {@link NoEndpointAvailableError} from any copy of Ballast. */
export function isNoEndpointAvailableError(value: unknown): value is NoEndpointAvailableError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_NO_ENDPOINT';
}

function describeReason(reason: NoEndpointReason): string {
  switch (reason) {
    case 'empty':
      return 'no endpoint available: the load balancer has no endpoints';
    case 'unavailable':
      return 'no endpoint available: every endpoint is draining or unhealthy';
    case 'closed':
      return 'no endpoint available: the load balancer is closed';
  }
}
