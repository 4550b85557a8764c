import { InvalidOptionError } from './errors.ts';
import { CallScope, declareJoinsScope, joinsScope, type Policy, type PolicyContext, type PolicyExecuteOptions } from './policy.ts';

type Step = (scope: CallScope) => unknown;

/**
 * Continues a chain from the context a policy handed down: the chain's own scope as is, or
 * a foreign context, followed by a scope of the chain (carrying its task and classifier)
 * that aborts with the foreign signal, released when the rest of the chain settles.
 */
function bridge(scope: CallScope, context: PolicyContext | undefined, next: Step): unknown {
  if (CallScope.isScope(context)) return next(context);
  const signal = context?.signal;
  const bridged = CallScope.root(signal instanceof AbortSignal ? signal : undefined, scope.classify, scope.task);
  bridged.attempt = typeof context?.attempt === 'number' ? context.attempt : scope.attempt;
  let result: unknown;
  try {
    result = next(bridged);
  } catch (error) {
    bridged.release();
    throw error;
  }
  return Promise.resolve(result).finally(() => bridged.release());
}

/** Calls the function at the end of a chain, which the call's scope carries as its task. */
const callTask: Step = (scope) => (scope.task as (context: PolicyContext) => unknown)(scope);

/**
 * Several policies run as one, outermost first; what {@link wrap} returns. It is itself a
 * {@link Policy}, so a chain can be wrapped again, or joined by passing it a context.
 */
export class PolicyChain<R = unknown> implements Policy<R> {
  static {
    declareJoinsScope(PolicyChain);
  }

  /** The policies, outermost first. */
  readonly policies: readonly Policy<R>[];
  readonly #first: Step;

  /** @throws {InvalidOptionError} when a policy has no `execute` method. */
  constructor(policies: readonly Policy<R>[]) {
    policies.forEach((policy, i) => {
      if (typeof (policy as Partial<Policy> | null)?.execute !== 'function') {
        throw new InvalidOptionError(`policies[${i}]`, 'a policy (an object with execute(fn, options))', policy);
      }
    });
    this.policies = Object.freeze([...policies]);
    // One step per policy, built once: a call allocates no closure per layer. Each policy
    // receives the scope handed down as its options, so it joins the call (one signal,
    // one classification) instead of starting a new one.
    let next: Step = callTask;
    for (let i = policies.length - 1; i >= 0; i--) {
      const policy = policies[i] as Policy<unknown>;
      const inner = next;
      if ((policy as { [joinsScope]?: unknown })[joinsScope] === true) {
        next = (scope) => policy.execute(inner as (context: PolicyContext) => unknown, scope);
      } else {
        // A policy that may hand down a context of its own: bridge it back to the call's scope.
        next = (scope) => policy.execute((context) => bridge(scope, context, inner), scope);
      }
    }
    this.#first = next;
  }

  /**
   * Runs `fn` through every policy, outermost first: `fn` receives the context the
   * innermost policy hands down (its `signal` aborts when any policy of the chain, or the
   * caller, aborts the call; `attempt` counts the attempts of an enclosing retry policy).
   *
   * @returns what `fn` returns; rejects with what `fn` threw or a policy's own error.
   */
  execute<T extends R>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: PolicyExecuteOptions<T>): Promise<T> {
    if (typeof fn !== 'function') return Promise.reject(new InvalidOptionError('fn', 'a function', fn));
    if (CallScope.isScope(options)) return this.#joined(fn, options);
    let scope: CallScope;
    try {
      scope = CallScope.from(options, fn);
    } catch (error) {
      return Promise.reject(error);
    }
    const settled = this.#run<T>(this.#first, scope);
    // Only a root following a caller's signal holds something (a listener) to release.
    if (options?.signal == null) return settled;
    return settled.then(
      (value) => {
        scope.release();
        return value;
      },
      (error: unknown) => {
        scope.release();
        throw error;
      },
    );
  }

  /**
   * Runs the chain inside a call an enclosing policy (or chain) started: its scope already
   * carries that call's task, so this chain's steps are built for this call (nesting chains
   * is rare; the flat chain above allocates none).
   */
  #joined<T extends R>(fn: (context: PolicyContext) => T | PromiseLike<T>, outer: CallScope): Promise<T> {
    let next = fn as Step;
    for (let i = this.policies.length - 1; i >= 0; i--) {
      const policy = this.policies[i] as Policy<unknown>;
      const inner = next as (context: PolicyContext) => unknown;
      next = (scope) => policy.execute(inner, scope);
    }
    return this.#run<T>(next, outer);
  }

  #run<T>(first: Step, scope: CallScope): Promise<T> {
    try {
      return Promise.resolve(first(scope) as T | PromiseLike<T>);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/**
 * Composes policies, outermost first, as cockatiel's `wrap` does:
 * `wrap(retry, breaker, limiter, timeout).execute(fn)` retries calls that go through the
 * breaker, then the limiter, then the timeout. The chain has one call scope: one signal
 * (linked to the caller's once, created only if read), one classification of each
 * outcome (`classify`, passed to every policy), and the result typed as `fn`'s.
 *
 * @example
 * ```ts
 * const upstream = wrap(
 *   new RetryPolicy({ maxAttempts: 3 }),
 *   new CircuitBreaker({ name: 'images' }),
 *   new ConcurrencyLimiter({ limit: 100 }),
 *   new TimeoutPolicy({ timeoutMs: 2_000 }),
 * );
 * const res = await upstream.execute(({ signal }) => fetch(url, { signal }), {
 *   signal: request.signal,
 *   classify: (o) => (!o.ok ? 'failure' : o.value.status >= 500 ? 'failure' : 'success'),
 * });
 * ```
 * @typeParam R the results the chain accepts (`wrap<Response>(…)` refuses functions that
 * return anything else); `execute` resolves with exactly what `fn` returns either way.
 * @throws {InvalidOptionError} when an argument is not a policy.
 */
export function wrap<R = unknown>(...policies: readonly Policy<never>[]): PolicyChain<R> {
  return new PolicyChain<R>(policies as readonly Policy<R>[]);
}
