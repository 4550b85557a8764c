import type { Clock } from './clock.ts';
import { InvalidOptionError } from './errors.ts';

/**
 * What a policy hands the function it runs: one object per call (per attempt, under a
 * retry), the same object passed down a {@link wrap} chain.
 */
export interface PolicyContext {
  /**
   * Aborts when the work must stop: the caller's signal aborted, a timeout fired, the
   * policy was disposed, or (hedging) another attempt won. Created on first read, so a
   * function that never reads it pays nothing for it. Pass it on (`fetch(url, { signal })`).
   */
  readonly signal: AbortSignal;
  /** The attempt number, 1 for the first; only a retry policy counts above 1. */
  readonly attempt: number;
}

/**
 * How one call ended, as every policy of a chain sees it:
 * - `success`: the dependency did its job;
 * - `failure`: the dependency failed (a 500, a refused connection): counts against a
 *   circuit, shrinks an adaptive limit, may be retried;
 * - `overload`: the dependency turned the call away because it is overloaded (a 429, a
 *   503 with load shedding): all of the above, and the client-side throttle backs off;
 * - `ignore`: says nothing about the dependency (a 4xx caller error, a cancelled call).
 */
export type Verdict = 'success' | 'failure' | 'overload' | 'ignore';

/** What a call produced: a value (`ok: true`) or an error. */
export type PolicyOutcome<T = unknown> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** Judges how a call ended. Given once, to `execute` or to {@link wrap}, and shared by every policy of the chain. */
export type Classifier<T = unknown> = (outcome: PolicyOutcome<T>) => Verdict;

/** Per-call options every policy's `execute` takes. */
export interface PolicyExecuteOptions<T = unknown> {
  /** Cancels the call: the context's signal aborts too, and the call rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Judges the outcome once for every policy of the chain (see {@link Verdict}). Without it
   * each policy judges by its own options, as when used alone.
   * @default none
   */
  classify?: Classifier<T>;
}

/**
 * The contract every Ballast policy implements (circuit breaker, retry, concurrency and
 * rate limiters, client-side throttle, scheduler, timeout): run `fn(context)` with one
 * signal, taking `{ signal }` from the caller, and settle with what `fn` settled with
 * (or the policy's own rejection). Compose several with {@link wrap}.
 *
 * A context received from an outer policy can be passed as the options of an inner
 * policy's `execute`: the inner policy then joins the same call (one signal, one
 * classification) instead of linking a new one.
 *
 * @typeParam R the results the policy accepts (a breaker typed for `Response` judges responses).
 * @typeParam C the context `fn` receives.
 */
export interface Policy<R = unknown, C extends PolicyContext = PolicyContext> {
  /**
   * Runs `fn` under the policy.
   * @typeParam T what `fn` returns; a policy typed for results of type `R` accepts only those.
   */
  execute<T extends R>(fn: (context: C) => T | PromiseLike<T>, options?: PolicyExecuteOptions<T>): Promise<T>;
}

/**
 * Declares that a policy hands `fn` the scope it was given as options (or a child of it),
 * as every Ballast policy does: `wrap()` then builds its chain once, with no closure per
 * call and layer. A policy without it still composes; `wrap()` then bridges the context it
 * hands down to the chain's scope on every call. Set it with {@link declareJoinsScope}.
 */
export const joinsScope: unique symbol = Symbol.for('ballast.policy.joinsScope');

/**
 * Marks a policy class (every instance) as handing `fn` the scope it was given, or a child
 * of it (see {@link joinsScope}): call it once, in a `static {}` block of the class.
 */
export function declareJoinsScope(policyClass: abstract new (...args: never[]) => unknown): void {
  Object.defineProperty(policyClass.prototype, joinsScope, { value: true });
}

/**
 * The context of a call nothing can cancel (no caller signal, a policy that never aborts
 * its work): one shared, frozen object whose signal never aborts, so such a call
 * allocates no context of its own.
 */
export const uncancellableContext: PolicyContext = Object.freeze({ attempt: 1, signal: new AbortController().signal });

const VERDICTS: ReadonlySet<string> = new Set<Verdict>(['success', 'failure', 'overload', 'ignore']);

/**
 * One call's context and abort scope. Scopes form a tree: a policy that must abort the
 * work inside it (a timeout) or learn that the work outside it was aborted (a cancelled
 * call) takes a child of the scope it was given; an abort flows down to every
 * descendant, never up. No `AbortController` exists until some code reads `signal`, and
 * the caller's signal is listened to only once something below needs to hear about it.
 *
 * Policies use it to implement {@link Policy}; it is exported for custom policies.
 */
export class CallScope implements PolicyContext {
  /** The attempt number; see {@link PolicyContext.attempt}. */
  attempt: number;
  /** The chain's classifier, inherited by children. */
  readonly classify: Classifier<unknown> | undefined;
  /** What the composer at the root carries along (wrap() keeps the innermost function here); inherited. */
  readonly task: unknown;
  #onAbort: ((reason: unknown) => void) | undefined = undefined;
  /**
   * When the work under this scope started, on {@link startClock}: stamped by the policy
   * that hands the scope down, so that the policies below it, starting in the same
   * synchronous step, reuse one clock reading instead of each taking its own. A policy
   * that hands a scope down later (after a queue, a schedule) clears it first.
   */
  startedAt = 0;
  /** The clock {@link startedAt} was read on; undefined when the scope carries no stamp. */
  startClock: Clock | undefined = undefined;
  readonly #root: CallScope;
  #parent: CallScope | undefined;
  #firstChild: CallScope | undefined = undefined;
  #prev: CallScope | undefined = undefined;
  #next: CallScope | undefined = undefined;
  #controller: AbortController | undefined = undefined;
  #aborted = false;
  #reason: unknown = undefined;
  // Root only: the caller's signal and the classification memo.
  readonly #caller: AbortSignal | undefined;
  #listening = false;
  #memoOk = false;
  #memoKey: unknown = undefined;
  #memoVerdict: Verdict | undefined = undefined;

  /**
   * A scope under `parent` (inheriting its classifier and task, and aborted at once if it
   * is), or a root following the caller's `signal` when `parent` is undefined. Policies
   * usually call {@link CallScope.root} or {@link CallScope.child}; a policy may extend
   * `CallScope` so that one object is both its per-call state and the context it hands
   * down (override {@link aborting} instead of setting `onAbort`). Release it when done.
   */
  protected constructor(
    parent: CallScope | undefined,
    attempt: number,
    signal?: AbortSignal,
    classify?: Classifier<unknown>,
    task?: unknown,
  ) {
    this.attempt = attempt;
    if (parent === undefined) {
      this.#root = this;
      this.#caller = signal;
      this.classify = classify;
      this.task = task;
      if (signal?.aborted) {
        this.#aborted = true;
        this.#reason = signal.reason;
      }
      return;
    }
    this.#root = parent.#root;
    this.classify = parent.classify;
    this.task = parent.task;
    // Listening first: a caller that aborted meanwhile aborts the tree before this scope joins it.
    this.#root.#listen();
    if (parent.#aborted) {
      this.#aborted = true;
      this.#reason = parent.#reason;
      return;
    }
    this.#parent = parent;
    const first = parent.#firstChild;
    this.#next = first;
    if (first !== undefined) first.#prev = this;
    parent.#firstChild = this;
  }

  /**
   * The scope of a call that starts here, from the caller's options. When `options` is
   * itself a scope (a context handed down by an outer policy), it is returned as is and
   * belongs to that policy: do not {@link release} it.
   *
   * @throws {InvalidOptionError} when `signal` is not an AbortSignal or `classify` not a function.
   */
  static from(options: PolicyExecuteOptions<never> | undefined, task?: unknown): CallScope {
    if (options instanceof CallScope) return options;
    if (options !== undefined) CallScope.check(options);
    return CallScope.root(options?.signal ?? undefined, options?.classify as Classifier<unknown> | undefined, task);
  }

  /**
   * Checks a caller's options: `signal` must be an AbortSignal (by shape, so signals of
   * other realms and polyfills are accepted) and `classify` a function.
   * @throws {InvalidOptionError} naming the bad option.
   */
  static check(options: PolicyExecuteOptions<never>): void {
    const { signal, classify } = options;
    if (signal != null && typeof (signal as Partial<AbortSignal>).addEventListener !== 'function') {
      throw new InvalidOptionError('signal', 'an AbortSignal', signal);
    }
    if (classify != null && typeof classify !== 'function') throw new InvalidOptionError('classify', 'a function', classify);
  }

  /**
   * The scope of a call that starts here ({@link from}), or a rejected promise when it
   * cannot start: its options are invalid, or it was cancelled already (a scope made for
   * it is then released). `scope === options` tells a joined scope (not yours to release).
   */
  static start(options: PolicyExecuteOptions<never> | undefined): CallScope | Promise<never> {
    let scope: CallScope;
    try {
      scope = CallScope.from(options);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!scope.aborted) return scope;
    if (scope !== options) scope.release();
    return Promise.reject(scope.reason);
  }

  /** A new root scope, following the caller's `signal`. Release it when the call ends. */
  static root(signal?: AbortSignal, classify?: Classifier<unknown>, task?: unknown): CallScope {
    return new CallScope(undefined, 1, signal, classify, task);
  }

  /** True when `options` is a scope handed down by an outer policy (so it is not yours to release). */
  static isScope(options: unknown): options is CallScope {
    return options instanceof CallScope;
  }

  /**
   * A child scope: it aborts when this one does, and can be aborted alone. Release it
   * when the work it covers ends.
   * @param attempt the child's attempt number. @default this scope's
   */
  child(attempt: number = this.attempt): CallScope {
    return new CallScope(this, attempt);
  }

  /**
   * Called once when this scope aborts (from above or by {@link abort}), before its signal
   * and descendants abort. Set by the policy that owns the scope; setting it makes a root
   * listen to the caller's signal.
   */
  get onAbort(): ((reason: unknown) => void) | undefined {
    return this.#onAbort;
  }

  set onAbort(hook: ((reason: unknown) => void) | undefined) {
    this.#onAbort = hook;
    if (hook !== undefined) this.#root.#listen();
  }

  /**
   * The start time of work under this scope on `clock`: the stamp of `from` (the scope
   * this policy was given) when it was read on the same clock, else a fresh reading;
   * either way stamped on this scope for the policies below.
   */
  stampStart(clock: Clock, from: CallScope | undefined): number {
    const startedAt = from !== undefined && from.startClock === clock ? from.startedAt : clock.now();
    this.startedAt = startedAt;
    this.startClock = clock;
    return startedAt;
  }

  /** See {@link PolicyContext.signal}. */
  get signal(): AbortSignal {
    let controller = this.#controller;
    if (controller === undefined) {
      this.#root.#listen();
      controller = this.#controller = new AbortController();
      if (this.#aborted) controller.abort(this.#reason);
    }
    return controller.signal;
  }

  /** True once this scope (or one above it) aborted. */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** Why it aborted (undefined until then). */
  get reason(): unknown {
    return this.#reason;
  }

  /** Aborts this scope and its descendants (not its ancestors) with `reason`. Idempotent. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.aborting(reason);
    this.#controller?.abort(reason);
    if (this.#firstChild === undefined) return;
    // A snapshot: a child's hook may release its siblings while this runs (not a hot path).
    const children: CallScope[] = [];
    for (let child: CallScope | undefined = this.#firstChild; child !== undefined; child = child.#next) children.push(child);
    for (const child of children) child.abort(reason);
  }

  /**
   * Makes this scope hear about an abort from above now (its root listens to the caller's
   * signal; it otherwise does once something below needs it): for a policy that must settle
   * at once when its call is cancelled, even if the work ignores its signal.
   */
  watch(): void {
    this.#root.#listen();
  }

  /**
   * Runs once when this scope aborts, before its signal and descendants do: calls the
   * `onAbort` hook. A policy extending `CallScope` overrides it (no closure per call).
   */
  protected aborting(reason: unknown): void {
    const hook = this.#onAbort;
    if (hook === undefined) return;
    this.#onAbort = undefined;
    hook(reason);
  }

  /**
   * Detaches this scope: it no longer follows aborts from above, and a root stops listening
   * to the caller's signal. Its signal, if made, stays as it is (a response body may still
   * be streaming on it). Idempotent.
   */
  release(): void {
    this.#onAbort = undefined;
    const parent = this.#parent;
    if (parent !== undefined) {
      this.#parent = undefined;
      const prev = this.#prev;
      const next = this.#next;
      if (prev === undefined) {
        if (parent.#firstChild === this) parent.#firstChild = next;
      } else prev.#next = next;
      if (next !== undefined) next.#prev = prev;
      this.#prev = undefined;
      this.#next = undefined;
    } else if (this.#listening) {
      this.#listening = false;
      this.#caller?.removeEventListener('abort', this);
    }
  }

  /**
   * The chain's verdict on an outcome, computed once: every policy of a chain asking about
   * the same outcome gets the memoised answer. `undefined` when the call has no classifier.
   * @throws {InvalidOptionError} when the classifier returns something that is not a {@link Verdict};
   * whatever the classifier throws.
   */
  verdict(ok: boolean, valueOrError: unknown): Verdict | undefined {
    const classify = this.classify;
    if (classify === undefined) return undefined;
    const root = this.#root;
    if (root.#memoVerdict !== undefined && root.#memoOk === ok && root.#memoKey === valueOrError) return root.#memoVerdict;
    const verdict = classify(ok ? { ok: true, value: valueOrError } : { ok: false, error: valueOrError });
    if (!VERDICTS.has(verdict as string)) throw new InvalidOptionError('classify', 'a function returning a Verdict', verdict);
    root.#memoOk = ok;
    root.#memoKey = valueOrError;
    root.#memoVerdict = verdict;
    return verdict;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.#listening = false;
    this.abort(this.#caller?.reason);
  }

  #listen(): void {
    const caller = this.#caller;
    if (this.#listening || this.#aborted || caller === undefined) return;
    // The caller may have aborted since this root was made: no 'abort' event would come.
    if (caller.aborted) {
      this.abort(caller.reason);
      return;
    }
    this.#listening = true;
    caller.addEventListener('abort', this, { once: true });
  }
}
