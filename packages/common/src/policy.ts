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

/** Listener options of a root on its caller's signal, made once. */
const ONCE: { readonly once: true } = Object.freeze({ once: true });

/** A scope's abort reason while it has not aborted. */
const LIVE: unique symbol = Symbol('live');

/**
 * What only the root of a scope tree holds, and only when the call has any of it: the
 * caller's signal (and whether the root listens to it), the chain's classifier and task,
 * and the memo of the last verdict. A call with none of these allocates none of it.
 */
class CallRoot {
  readonly caller: AbortSignal | undefined;
  readonly classify: Classifier<unknown> | undefined;
  readonly task: unknown;
  listening = false;
  memoOk = false;
  memoKey: unknown = undefined;
  memoVerdict: Verdict | undefined = undefined;
  constructor(caller: AbortSignal | undefined, classify: Classifier<unknown> | undefined, task: unknown) {
    this.caller = caller;
    this.classify = classify;
    this.task = task;
  }
}

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
  // A scope is made per call (and per policy of a chain), millions of times: its state is
  // in TypeScript-private fields assigned in the constructor, which cost measurably less to
  // create than JavaScript #private fields and field initializers.
  /** The attempt number; see {@link PolicyContext.attempt}. */
  declare attempt: number;
  /**
   * When the work under this scope started, on {@link startClock}: stamped by the policy
   * that hands the scope down, so that the policies below it, starting in the same
   * synchronous step, reuse one clock reading instead of each taking its own. A policy
   * that hands a scope down later (after a queue, a schedule) clears it first.
   */
  declare startedAt: number;
  /** The clock {@link startedAt} was read on; undefined when the scope carries no stamp. */
  declare startClock: Clock | undefined;
  declare private scopeRoot: CallScope;
  /** Root only: the caller's signal, classifier and task, when there are any. */
  declare private scopeCall: CallRoot | undefined;
  declare private scopeParent: CallScope | undefined;
  declare private scopeFirstChild: CallScope | undefined;
  declare private scopePrev: CallScope | undefined;
  declare private scopeNext: CallScope | undefined;
  declare private scopeController: AbortController | undefined;
  /** Why this scope aborted; {@link LIVE} until it does. */
  declare private scopeReason: unknown;
  declare private scopeOnAbort: ((reason: unknown) => void) | undefined;

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
    // Every field, in one order, on every path: one shape for every scope.
    this.attempt = attempt;
    this.startedAt = 0;
    this.startClock = undefined;
    this.scopeRoot = this;
    this.scopeCall = undefined;
    this.scopeParent = undefined;
    this.scopeFirstChild = undefined;
    this.scopePrev = undefined;
    this.scopeNext = undefined;
    this.scopeController = undefined;
    this.scopeReason = LIVE;
    this.scopeOnAbort = undefined;
    if (parent === undefined) {
      if (signal === undefined && classify === undefined && task === undefined) return;
      this.scopeCall = new CallRoot(signal, classify, task);
      if (signal?.aborted) this.scopeReason = signal.reason;
      return;
    }
    const root = parent.scopeRoot;
    this.scopeRoot = root;
    // Listening first: a caller that aborted meanwhile aborts the tree before this scope joins it.
    // (A root with no caller's signal has nothing to listen to: the common case, checked here.)
    if (root.scopeCall !== undefined) root.listen();
    if (parent.scopeReason !== LIVE) {
      this.scopeReason = parent.scopeReason;
      return;
    }
    this.scopeParent = parent;
    const first = parent.scopeFirstChild;
    this.scopeNext = first;
    if (first !== undefined) first.scopePrev = this;
    parent.scopeFirstChild = this;
  }

  /** The chain's classifier, inherited by children. */
  get classify(): Classifier<unknown> | undefined {
    return this.scopeRoot.scopeCall?.classify;
  }

  /** What the composer at the root carries along; inherited. */
  get task(): unknown {
    return this.scopeRoot.scopeCall?.task;
  }

  /** The caller's signal this scope's root follows, if any. */
  protected get callerSignal(): AbortSignal | undefined {
    return this.scopeRoot.scopeCall?.caller;
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
    return new CallScope(undefined, 1, signal ?? undefined, classify ?? undefined, task);
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
    return this.scopeOnAbort;
  }

  set onAbort(hook: ((reason: unknown) => void) | undefined) {
    this.scopeOnAbort = hook;
    if (hook !== undefined) this.scopeRoot.listen();
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
    let controller = this.scopeController;
    if (controller === undefined) {
      this.scopeRoot.listen();
      controller = this.scopeController = new AbortController();
      if (this.scopeReason !== LIVE) controller.abort(this.scopeReason);
    }
    return controller.signal;
  }

  /** True once this scope (or one above it) aborted. */
  get aborted(): boolean {
    return this.scopeReason !== LIVE;
  }

  /** Why it aborted (undefined until then). */
  get reason(): unknown {
    const reason = this.scopeReason;
    return reason === LIVE ? undefined : reason;
  }

  /** Aborts this scope and its descendants (not its ancestors) with `reason`. Idempotent. */
  abort(reason: unknown): void {
    if (this.scopeReason !== LIVE) return;
    this.scopeReason = reason;
    this.aborting(reason);
    this.scopeController?.abort(reason);
    if (this.scopeFirstChild === undefined) return;
    // A snapshot: a child's hook may release its siblings while this runs (not a hot path).
    const children: CallScope[] = [];
    for (let child: CallScope | undefined = this.scopeFirstChild; child !== undefined; child = child.scopeNext) children.push(child);
    for (const child of children) child.abort(reason);
  }

  /**
   * Makes this scope hear about an abort from above now (its root listens to the caller's
   * signal; it otherwise does once something below needs it): for a policy that must settle
   * at once when its call is cancelled, even if the work ignores its signal.
   */
  watch(): void {
    const root = this.scopeRoot;
    if (root.scopeCall !== undefined) root.listen();
  }

  /**
   * Runs once when this scope aborts, before its signal and descendants do: calls the
   * `onAbort` hook. A policy extending `CallScope` overrides it (no closure per call).
   */
  protected aborting(reason: unknown): void {
    const hook = this.scopeOnAbort;
    if (hook === undefined) return;
    this.scopeOnAbort = undefined;
    hook(reason);
  }

  /**
   * Detaches this scope: it no longer follows aborts from above, and a root stops listening
   * to the caller's signal. Its signal, if made, stays as it is (a response body may still
   * be streaming on it). Idempotent.
   */
  release(): void {
    this.scopeOnAbort = undefined;
    const parent = this.scopeParent;
    if (parent !== undefined) {
      this.scopeParent = undefined;
      const prev = this.scopePrev;
      const next = this.scopeNext;
      if (prev === undefined) {
        if (parent.scopeFirstChild === this) parent.scopeFirstChild = next;
      } else prev.scopeNext = next;
      if (next !== undefined) next.scopePrev = prev;
      this.scopePrev = undefined;
      this.scopeNext = undefined;
      return;
    }
    const call = this.scopeCall;
    if (call?.listening) {
      call.listening = false;
      call.caller?.removeEventListener('abort', this);
    }
  }

  /**
   * The chain's verdict on an outcome, computed once: every policy of a chain asking about
   * the same outcome gets the memoised answer. `undefined` when the call has no classifier.
   * @throws {InvalidOptionError} when the classifier returns something that is not a {@link Verdict};
   * whatever the classifier throws.
   */
  verdict(ok: boolean, valueOrError: unknown): Verdict | undefined {
    const call = this.scopeRoot.scopeCall;
    const classify = call?.classify;
    if (classify === undefined) return undefined;
    const memo = call as CallRoot;
    if (memo.memoVerdict !== undefined && memo.memoOk === ok && memo.memoKey === valueOrError) return memo.memoVerdict;
    const verdict = classify(ok ? { ok: true, value: valueOrError } : { ok: false, error: valueOrError });
    if (!VERDICTS.has(verdict as string)) throw new InvalidOptionError('classify', 'a function returning a Verdict', verdict);
    memo.memoOk = ok;
    memo.memoKey = valueOrError;
    memo.memoVerdict = verdict;
    return verdict;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    const call = this.scopeCall;
    if (call === undefined) return;
    call.listening = false;
    this.abort(call.caller?.reason);
  }

  /** Starts listening to the caller's signal (a root's), unless there is none or it already does. */
  private listen(): void {
    const call = this.scopeCall;
    if (call === undefined) return;
    const caller = call.caller;
    if (call.listening || this.scopeReason !== LIVE || caller === undefined) return;
    // The caller may have aborted since this root was made: no 'abort' event would come.
    if (caller.aborted) {
      this.abort(caller.reason);
      return;
    }
    call.listening = true;
    caller.addEventListener('abort', this, ONCE);
  }
}
