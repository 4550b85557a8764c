import { InvalidOptionError } from './errors.ts';
import { CallScope, declareJoinsScope, type Policy, type PolicyContext, type PolicyExecuteOptions } from './policy.ts';
import { type CallSink, declareStaged, forward, isStaged, refuse, runAsPromise, runStage, type Stage, type StagedPolicy } from './stage.ts';

/**
 * A policy that is not a {@link StagedPolicy}, as a stage of a chain: it runs through its
 * own `execute`, and the rest of the chain runs inside the function it calls, from the
 * context it hands down (bridged to a scope of the chain when it is not one).
 */
class ExecuteStage {
  static {
    declareStaged(ExecuteStage, function (fn, options, sink, inner) {
      return this.#run(fn, options, sink, inner);
    });
  }

  readonly #policy: Policy<unknown>;
  constructor(policy: Policy<unknown>) {
    this.#policy = policy;
  }

  #run(
    fn: (context: PolicyContext) => unknown,
    options: PolicyExecuteOptions<never> | undefined,
    sink: CallSink | undefined,
    inner: Stage | undefined,
  ): Promise<unknown> | undefined {
    const scope = options as CallScope;
    let settled: Promise<unknown>;
    try {
      settled = this.#policy.execute((context) => bridge(scope, context, fn, inner), scope);
    } catch (error) {
      settled = Promise.reject(error);
    }
    return forward(sink, settled);
  }
}

/**
 * Continues a chain from the context a policy handed down: the chain's own scope as is, or
 * a foreign context, followed by a scope of the chain (carrying its classifier) that
 * aborts with the foreign signal, released when the rest of the chain settles.
 */
function bridge(
  scope: CallScope,
  context: PolicyContext | undefined,
  fn: (context: PolicyContext) => unknown,
  inner: Stage | undefined,
): unknown {
  if (CallScope.isScope(context)) return runAsPromise(fn, inner, context);
  const signal = context?.signal;
  const bridged = CallScope.root(signal instanceof AbortSignal ? signal : undefined, scope.classify, scope.task);
  bridged.attempt = typeof context?.attempt === 'number' ? context.attempt : scope.attempt;
  return runAsPromise(fn, inner, bridged).finally(() => bridged.release());
}

/** The stages of `policies`, outermost first, with `last` after them. */
function link(policies: readonly Policy<unknown>[], last: Stage | undefined): Stage | undefined {
  let next = last;
  for (let i = policies.length - 1; i >= 0; i--) {
    const policy = policies[i] as Policy<unknown>;
    next = { policy: isStaged(policy) ? policy : (new ExecuteStage(policy) as unknown as StagedPolicy), next };
  }
  return next;
}

/**
 * Several policies run as one, outermost first; what {@link wrap} returns. It is itself a
 * {@link Policy}, so a chain can be wrapped again, or joined by passing it a context.
 *
 * Ballast's policies run as stages of one call (see {@link StagedPolicy}): `fn` runs once
 * per attempt, its result is awaited once, and each policy hears how it ended by a plain
 * call, so the chain settles one promise per call rather than one per policy.
 */
export class PolicyChain<R = unknown> implements Policy<R> {
  static {
    declareJoinsScope(PolicyChain);
    declareStaged(PolicyChain, function (fn, options, sink, inner) {
      return this.#run(fn, options, sink, inner);
    });
  }

  /** The policies, outermost first. */
  readonly policies: readonly Policy<R>[];
  /** The first stage, built once: a call allocates no closure per layer. */
  readonly #first: Stage | undefined;
  /** True when the first stage is a staged policy (see {@link StagedPolicy}): it can start a call itself. */
  readonly #firstStaged: boolean;

  /** @throws {InvalidOptionError} when a policy has no `execute` method. */
  constructor(policies: readonly Policy<R>[]) {
    policies.forEach((policy, i) => {
      if (typeof (policy as Partial<Policy> | null)?.execute !== 'function') {
        throw new InvalidOptionError(`policies[${i}]`, 'a policy (an object with execute(fn, options))', policy);
      }
    });
    this.policies = Object.freeze([...policies]);
    this.#first = link(this.policies as readonly Policy<unknown>[], undefined);
    this.#firstStaged = this.#first !== undefined && !((this.#first.policy as unknown) instanceof ExecuteStage);
  }

  /**
   * Runs `fn` through every policy, outermost first: `fn` receives the context the
   * innermost policy hands down (its `signal` aborts when any policy of the chain, or the
   * caller, aborts the call; `attempt` counts the attempts of an enclosing retry policy).
   *
   * @returns what `fn` returns; rejects with what `fn` threw or a policy's own error.
   */
  execute<T extends R>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: PolicyExecuteOptions<T>): Promise<T> {
    return this.#run(fn, options as PolicyExecuteOptions<never> | undefined, undefined, undefined) as Promise<T>;
  }

  /** Runs one call through the chain, as a stage of an enclosing chain or for {@link execute}. */
  #run(
    fn: (context: PolicyContext) => unknown,
    options: PolicyExecuteOptions<never> | undefined,
    sink: CallSink | undefined,
    inner: Stage | undefined,
  ): Promise<unknown> | undefined {
    if (typeof fn !== 'function') return refuse(sink, new InvalidOptionError('fn', 'a function', fn));
    // Inside an enclosing chain, this chain's stages are followed by the rest of that one (rare: built per call).
    const first = inner === undefined ? this.#first : link(this.policies as readonly Policy<unknown>[], inner);
    if (first !== undefined && this.#firstStaged && (options === undefined || CallScope.isScope(options))) {
      // A staged policy first, and nothing from the caller but an enclosing scope, if any: it starts the call.
      return first.policy[runStage](fn, options, sink, first.next);
    }
    let scope: CallScope;
    try {
      scope = CallScope.from(options, fn);
    } catch (error) {
      return refuse(sink, error);
    }
    // Only a root following a caller's signal holds something (a listener) to release.
    const owned = scope !== options && options?.signal != null;
    if (first === undefined) {
      // An empty chain: fn alone, in the call's scope.
      const settled = runAsPromise(fn, undefined, scope);
      return forward(sink, owned ? settled.finally(() => scope.release()) : settled);
    }
    const settled = first.policy[runStage](fn, scope, undefined, first.next) as Promise<unknown>;
    return forward(sink, owned ? settled.finally(() => scope.release()) : settled);
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
