import type { InvalidOptionError, TimeoutError } from '@ballast/common';
import { describe, expectTypeOf, it } from 'vitest';
import {
  type BreakerDisposedError,
  type BreakerRegistry,
  type BrokenCircuitError,
  CircuitBreaker,
  type CircuitBreakerError,
  circuitBreakerFetch,
  isBrokenCircuitError,
} from './index.ts';

describe('types', () => {
  it('execute returns what the function returns, and fire takes the action arguments', () => {
    const breaker = new CircuitBreaker(async (id: number, name: string) => ({ id, name }));
    expectTypeOf(breaker.fire).parameters.toEqualTypeOf<[number, string]>();
    expectTypeOf(breaker.fire).returns.resolves.toEqualTypeOf<{ id: number; name: string }>();
    const plain = new CircuitBreaker<Response>({ isFailure: (r) => r.status >= 500 });
    const call = () => plain.execute(async () => new Response()); // typed, never called
    expectTypeOf(call).returns.resolves.toEqualTypeOf<Response>();
    breaker.close();
    plain.close();
  });

  it('the guard narrows to an error carrying retryAfterMs', () => {
    const error: unknown = undefined;
    if (isBrokenCircuitError(error)) {
      expectTypeOf(error).toEqualTypeOf<BrokenCircuitError>();
      expectTypeOf(error.retryAfterMs).toEqualTypeOf<number>();
    }
  });

  it('the fetch wrapper has the shape of fetch and exposes its registry', () => {
    const protectedFetch = circuitBreakerFetch();
    expectTypeOf(protectedFetch).toBeCallableWith('https://example.com', { method: 'GET' });
    expectTypeOf(protectedFetch).returns.resolves.toEqualTypeOf<Response>();
    expectTypeOf(protectedFetch.registry).toEqualTypeOf<BreakerRegistry>();
    protectedFetch.registry.close();
  });

  it('switch (error.code) narrows a CircuitBreakerError to its class', () => {
    const narrow = (error: CircuitBreakerError): string => {
      switch (error.code) {
        case 'ERR_BALLAST_CIRCUIT_OPEN':
          expectTypeOf(error).toEqualTypeOf<BrokenCircuitError>();
          return `retry in ${error.retryAfterMs} ms`;
        case 'ERR_BALLAST_BREAKER_DISPOSED':
          expectTypeOf(error).toEqualTypeOf<BreakerDisposedError>();
          return error.breaker;
        case 'ERR_BALLAST_TIMEOUT':
          expectTypeOf(error).toEqualTypeOf<TimeoutError>();
          return String(error.timeoutMs);
        case 'ERR_BALLAST_INVALID_OPTION':
          expectTypeOf(error).toEqualTypeOf<InvalidOptionError>();
          return error.option;
      }
    };
    expectTypeOf(narrow).returns.toBeString();
  });

  it('a wrong expectation fails the typecheck (this file is type-checked by tsc -p)', () => {
    const call = () => new CircuitBreaker<number>().execute(async () => 1); // typed, never called
    // @ts-expect-error a number result is not a string: tsc must reject this line
    expectTypeOf(call).returns.resolves.toEqualTypeOf<string>();
  });
});
