/**
 * The contenders of `npm run bench:composed`, each built in a process of its own (see
 * lib/isolated.ts): retry ∘ circuit breaker ∘ concurrency limiter ∘ timeout around a call
 * that succeeds at once, as Ballast's wrap(), as cockatiel's wrap of its equivalents, and as
 * Ballast was before the policy contract (the same four concerns nested by hand, as the
 * gateway did, imported from the baseline commit; see lib/baseline.ts).
 */
import { ConcurrencyLimiter } from '@ballast/backpressure';
import { CircuitBreaker } from '@ballast/circuit-breaker';
import { type Classifier, TimeoutPolicy, wrap } from '@ballast/common';
import { RetryPolicy } from '@ballast/retry';
import {
  bulkhead,
  circuitBreaker,
  wrap as cockatielWrap,
  ExponentialBackoff,
  handleAll,
  retry,
  SamplingBreaker,
  TimeoutStrategy,
  timeout,
} from 'cockatiel';
import { importBaseline } from '../lib/baseline.ts';
import type { Contender } from '../lib/isolated.ts';

export const BARE = 'bare call (no policy)';
export const BALLAST = 'Ballast wrap(retry, breaker, limiter, timeout)';
export const BALLAST_FULL = 'Ballast wrap(...), caller signal + classify';
export const BALLAST_NO_HISTOGRAM = "Ballast wrap(...), breaker's recordLatency: false";
export const COCKATIEL = 'cockatiel wrap(retry, circuitBreaker, bulkhead, timeout: aggressive)';
export const COCKATIEL_COOP = 'cockatiel wrap(...), timeout: cooperative';
export const BEFORE = 'Ballast before the contract: the same, nested by hand';

/** Every contender, in report order (the baseline last: it may be unavailable). */
export const NAMES: readonly string[] = [BARE, BALLAST, BALLAST_NO_HISTOGRAM, BALLAST_FULL, COCKATIEL, COCKATIEL_COOP, BEFORE];

const value = { status: 200 };
const op = async (): Promise<typeof value> => value;
const classify: Classifier<typeof value> = (o) => (!o.ok || o.value.status >= 500 ? 'failure' : 'success');

function ballastStack(recordLatency = true) {
  const policies = [
    new RetryPolicy({ maxAttempts: 3 }),
    // The timeout is a policy of its own here, as in cockatiel's stack.
    new CircuitBreaker({ name: 'bench', timeoutMs: false, recordLatency }),
    new ConcurrencyLimiter({ limit: 1_000_000 }),
    new TimeoutPolicy({ timeoutMs: 10_000 }),
  ] as const;
  const [retryPolicy, breaker, limiter, timeoutPolicy] = policies;
  return {
    chain: wrap(...policies),
    close: () => {
      retryPolicy.close();
      breaker.dispose();
      limiter.close();
      timeoutPolicy.close();
    },
  };
}

function cockatielStack(strategy: TimeoutStrategy) {
  return cockatielWrap(
    retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
    circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }) }),
    bulkhead(1_000_000),
    timeout(10_000, strategy),
  );
}

interface OldRetry {
  RetryPolicy: new (
    options?: object,
  ) => { execute(fn: (c: { signal: AbortSignal }) => unknown, o?: object): Promise<unknown>; close(): void };
}
interface OldBreaker {
  CircuitBreaker: new (options?: object) => { execute(fn: (s: AbortSignal) => unknown, o?: object): Promise<unknown>; close(): void };
}
interface OldBackpressure {
  ConcurrencyLimiter: new (options?: object) => { run(fn: () => unknown, o?: object): Promise<unknown>; close(): void };
}

/** Ballast at the baseline commit: retry → breaker (its own 10 s timeout) → limiter, as the gateway nested them. */
async function beforeStack(): Promise<Contender> {
  const [r, b, bp] = await Promise.all([
    importBaseline<OldRetry>('retry'),
    importBaseline<OldBreaker>('circuit-breaker'),
    importBaseline<OldBackpressure>('backpressure'),
  ]);
  if (!r || !b || !bp) throw new Error('the baseline commit is unavailable');
  const oldRetry = new r.RetryPolicy({ maxAttempts: 3 });
  const oldBreaker = new b.CircuitBreaker({ name: 'bench', timeout: 10_000 });
  const oldLimiter = new bp.ConcurrencyLimiter({ limit: 1_000_000 });
  return {
    op: () => oldRetry.execute(({ signal }) => oldBreaker.execute(() => oldLimiter.run(op), { signal })),
    close: () => {
      oldRetry.close();
      oldBreaker.close();
      oldLimiter.close();
    },
  };
}

/** Builds the contender `name` (see lib/isolated.ts). */
export async function build(name: string): Promise<Contender> {
  switch (name) {
    case BARE:
      return { op };
    case BALLAST: {
      const stack = ballastStack();
      return { op: () => stack.chain.execute(op), close: stack.close };
    }
    case BALLAST_NO_HISTOGRAM: {
      // No latency histogram, as cockatiel's stack keeps none: no clock reading for a call that ends within its turn.
      const stack = ballastStack(false);
      return { op: () => stack.chain.execute(op), close: stack.close };
    }
    case BALLAST_FULL: {
      const stack = ballastStack();
      const caller = new AbortController();
      return { op: () => stack.chain.execute(op, { signal: caller.signal, classify }), close: stack.close };
    }
    case COCKATIEL: {
      const stack = cockatielStack(TimeoutStrategy.Aggressive);
      return { op: () => stack.execute(op) };
    }
    case COCKATIEL_COOP: {
      const stack = cockatielStack(TimeoutStrategy.Cooperative);
      return { op: () => stack.execute(op) };
    }
    case BEFORE:
      return beforeStack();
    default:
      throw new Error(`no contender ${JSON.stringify(name)}`);
  }
}
