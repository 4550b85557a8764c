import { HttpError, retryAfter, SHED_HEADER } from '@ballast/app-shared';
import { isShedError } from '@ballast/backpressure';
import { isBrokenCircuitError } from '@ballast/circuit-breaker';
import { isBallastError } from '@ballast/common';
import { isNoEndpointAvailableError, isUpstreamError } from '@ballast/load-balancer';

/** The codes of the errors the gateway answers itself (besides the body errors of @ballast/app-shared and 404). */
export type GatewayErrorCode =
  | 'ERR_BALLAST_OVERLOADED'
  | 'ERR_BALLAST_THROTTLED'
  | 'ERR_BALLAST_CLIENT_LIMIT'
  | 'ERR_BALLAST_NO_ENDPOINT'
  | 'ERR_BALLAST_CIRCUIT_OPEN'
  | 'ERR_BALLAST_UPSTREAM_UNREACHABLE'
  | 'ERR_BALLAST_UPSTREAM_TIMEOUT'
  | 'ERR_BALLAST_UPSTREAM';

/**
 * What the client is told when a request could not be proxied: a documented code and a
 * fixed message. The cause (`ECONNREFUSED`, `socket hang up`, an address) goes to the
 * log, never to the client.
 */
export function upstreamFailure(error: unknown): HttpError {
  if (isNoEndpointAvailableError(error)) {
    return new HttpError(503, 'ERR_BALLAST_NO_ENDPOINT', 'no API server is available; retry shortly', { 'retry-after': '1' });
  }
  if (isBrokenCircuitError(error)) {
    return new HttpError(503, 'ERR_BALLAST_CIRCUIT_OPEN', 'every API server tried is cut off after failing; retry shortly', {
      'retry-after': retryAfter((error as { retryAfterMs?: number }).retryAfterMs ?? 1000),
    });
  }
  if (isShedError(error)) {
    return new HttpError(503, 'ERR_BALLAST_OVERLOADED', 'every API server tried is at its request limit; retry shortly', {
      'retry-after': retryAfter(error.retryAfterMs),
      [SHED_HEADER]: 'upstreamFull',
    });
  }
  if ((isUpstreamError(error) && error.reason === 'timeout') || (isBallastError(error) && error.code === 'ERR_BALLAST_TIMEOUT')) {
    return new HttpError(504, 'ERR_BALLAST_UPSTREAM_TIMEOUT', 'the API server did not answer within the request’s deadline');
  }
  if (isUpstreamError(error)) {
    return new HttpError(502, 'ERR_BALLAST_UPSTREAM_UNREACHABLE', 'the API server could not be reached, or broke off before answering', {
      'retry-after': '1',
    });
  }
  return new HttpError(502, 'ERR_BALLAST_UPSTREAM', 'the request could not be proxied');
}

/** 503 `ERR_BALLAST_OVERLOADED`: the gateway holds `maxInflight` requests. */
export function gatewayFull(limit: number): HttpError {
  return new HttpError(503, 'ERR_BALLAST_OVERLOADED', `the gateway already forwards ${limit} requests; retry shortly`, {
    'retry-after': '1',
    [SHED_HEADER]: 'gatewayFull',
  });
}

/** 503 `ERR_BALLAST_THROTTLED`: adaptive throttling turned the request away. */
export function throttled(): HttpError {
  return new HttpError(503, 'ERR_BALLAST_THROTTLED', 'the API servers are shedding load; the gateway turned this request away early', {
    'retry-after': '1',
    [SHED_HEADER]: 'throttled',
  });
}
