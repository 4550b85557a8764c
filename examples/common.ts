/**
 * @ballast/common: the policy contract every Ballast package implements. A policy of
 * your own (it counts calls and their latency) composed with a `TimeoutPolicy` by
 * `wrap()`: one signal reaches the work, and a call that runs too long is cut off with a
 * `TimeoutError`. Also: the one HTTP error body and `Retry-After` value of every Ballast
 * adapter.
 *
 *   npm run example -- common                   (in the Ballast repository)
 *   node common.ts                              (in your project: npm i @ballast/common)
 */
import {
  CallScope,
  declareJoinsScope,
  errorBody,
  Histogram,
  isTimeoutError,
  type Policy,
  type PolicyContext,
  type PolicyExecuteOptions,
  retryAfterSeconds,
  TimeoutPolicy,
  wrap,
} from '@ballast/common';

/** A policy that lets every call through and records how long it took. */
class Metered implements Policy {
  static {
    declareJoinsScope(Metered); // it hands `fn` the scope it was given: wrap() need not bridge it
  }
  readonly latency = new Histogram();
  calls = 0;

  async execute<T>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: PolicyExecuteOptions<T>): Promise<T> {
    // A scope handed down by wrap() belongs to the chain; one made here is ours to release.
    const owned = !CallScope.isScope(options);
    const scope = CallScope.from(options);
    const started = performance.now();
    this.calls++;
    try {
      return await fn(scope);
    } finally {
      this.latency.record(performance.now() - started);
      if (owned) scope.release();
    }
  }
}

const metered = new Metered();
const timeout = new TimeoutPolicy({ timeoutMs: 100 });
const guarded = wrap(metered, timeout); // outermost first

/** Work that takes `ms`, and stops early when its signal aborts. */
const work = (ms: number) => (context: PolicyContext) =>
  new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => resolve(`done in ${ms} ms`), ms);
    context.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(context.signal.reason);
    });
  });

console.log(`fast call: ${await guarded.execute(work(10))}`);
try {
  await guarded.execute(work(1_000));
} catch (error) {
  console.log(`slow call: ${isTimeoutError(error) ? `TimeoutError (${(error as Error).message})` : String(error)}`);
}
const cancelled = new AbortController();
const call = guarded.execute(work(1_000), { signal: cancelled.signal });
cancelled.abort(new Error('the client went away'));
console.log(`cancelled call: ${await call.catch((error: Error) => error.message)}`);
console.log(`calls: ${metered.calls}, timeouts: ${timeout.stats().timeouts}, p50 ${metered.latency.summary().p50.toFixed(0)} ms`);

// The one error body and Retry-After value of every Ballast HTTP surface.
console.log(JSON.stringify(errorBody('ERR_BALLAST_SHED', 'the server is at its limit', { reason: 'limit' })));
console.log(`Retry-After for 2,500 ms: ${retryAfterSeconds(2_500)}`);
timeout.close();
