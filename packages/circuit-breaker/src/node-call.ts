/**
 * A request answered through Node's `ServerResponse` as one call of a circuit breaker:
 * the shared core of the Express and Fastify adapters. The call lasts until the response
 * is over, since neither framework says when a handler is done.
 */
import { clientGoneSignal, isTimeoutError, type NodeResponse, onResponseEnd, type TimeoutError } from '@ballast/common';
import type { CircuitBreaker } from './circuit-breaker.ts';
import { type BrokenCircuitError, isBrokenCircuitError } from './errors.ts';

/** How a request entered the circuit: let through, refused (the error to answer), or its client left first. */
export type CircuitEntry = 'admitted' | 'gone' | BrokenCircuitError | TimeoutError;

/**
 * Makes the request answered by `response` one call of `breaker`. Resolves once the
 * breaker decides: `'admitted'` (run the handler; the call ends with the response and
 * `failed()` judges it), the {@link BrokenCircuitError} to answer, or `'gone'`. A client
 * that goes away before the response is sent cancels the call without counting it. When
 * the call times out after admission, `onTimeout` is called (the handler cannot be stopped).
 */
export function enterCircuit(
  breaker: Pick<CircuitBreaker, 'execute'>,
  response: NodeResponse,
  failed: () => boolean,
  onTimeout: (error: TimeoutError) => void,
): Promise<CircuitEntry> {
  return new Promise<CircuitEntry>((resolve, reject) => {
    let admitted = false;
    const signal = clientGoneSignal(response);
    const call = (): Promise<void> => {
      admitted = true;
      resolve('admitted');
      // Settles with the response; a client gone first aborts `signal` before this resolves.
      return new Promise<void>((done) => onResponseEnd(response, () => done()));
    };
    breaker.execute(call, { signal, isFailure: failed }).catch((error: unknown) => {
      if (admitted) {
        if (isTimeoutError(error)) onTimeout(error);
        // Otherwise the client left, or the breaker was closed: nobody to answer.
        return;
      }
      if (isBrokenCircuitError(error) || isTimeoutError(error)) resolve(error);
      else if (signal.aborted) resolve('gone');
      else reject(error);
    });
  });
}
