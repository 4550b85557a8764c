import { CallScope, type Classifier, type PolicyContext, type PolicyExecuteOptions } from './policy.ts';

/**
 * Where a call's outcome goes when a policy runs as a stage of a chain: the stage outside
 * it (or, for the outermost, the promise `execute` returned). Settling a sink is a plain
 * call, so a chain of policies settles one promise per call, not one per policy, while
 * each policy still ends its call the moment it decides to (a timeout, an abort).
 */
export interface CallSink {
  /** The call ended with a value (`ok`) or an error. Called at most once per call; must not throw. */
  settle(ok: boolean, value: unknown): void;
}

/** What runs inside a stage: the next policy of a chain, followed by the rest of it. */
export interface Stage {
  readonly policy: StagedPolicy;
  readonly next: Stage | undefined;
}

/** The method a {@link StagedPolicy} runs a call with (see {@link StagedPolicy}). */
export const runStage: unique symbol = Symbol.for('ballast.policy.runStage');

/**
 * A policy that can run a call as one stage of a chain without a promise of its own:
 * `wrap()` links such policies directly, so the chain's function runs once, its result
 * is awaited once, and each policy hears how the call ended through a {@link CallSink}.
 * Every Ballast policy is one; a policy that is not still composes (through its
 * `execute`).
 */
export interface StagedPolicy {
  /**
   * Runs one call of `fn` under this policy, with `inner` (the rest of a chain, if any)
   * between the policy and `fn`. `options` are the caller's options or the scope handed
   * down by the stage outside (which the call then joins).
   *
   * With a `sink`, reports how the call ended to it (possibly before returning) and
   * returns undefined; without one, returns the promise `execute` would.
   */
  [runStage](
    fn: (context: PolicyContext) => unknown,
    options: PolicyExecuteOptions<never> | undefined,
    sink: CallSink | undefined,
    inner: Stage | undefined,
  ): Promise<unknown> | undefined;
}

/** How a policy class runs one call as a stage: {@link StagedPolicy}'s method, with the policy as `this`. */
export type StageRunner<P> = (
  this: P,
  fn: (context: PolicyContext) => unknown,
  options: PolicyExecuteOptions<never> | undefined,
  sink: CallSink | undefined,
  inner: Stage | undefined,
) => Promise<unknown> | undefined;

/**
 * Makes every instance of a policy class a {@link StagedPolicy} running calls with `run`:
 * call it once, in a `static {}` block of the class, with a function written there (so it
 * may use private members, and each class has its own, which the engine can inline).
 */
export function declareStaged<P>(policyClass: abstract new (...args: never[]) => P, run: StageRunner<P>): void {
  Object.defineProperty(policyClass.prototype, runStage, { value: run });
}

/** True when `policy` can run as a stage (see {@link StagedPolicy}). */
export function isStaged(policy: unknown): policy is StagedPolicy {
  return typeof (policy as Partial<StagedPolicy> | null)?.[runStage] === 'function';
}

/**
 * Runs what is inside a stage, in `context`, and reports how it ended to `sink`: the
 * next stage of the chain when there is one, else `fn` itself (a value, a thenable, or
 * a synchronous throw).
 */
export function runInside(fn: (context: PolicyContext) => unknown, inner: Stage | undefined, context: PolicyContext, sink: CallSink): void {
  if (inner !== undefined) {
    inner.policy[runStage](fn, context as CallScope, sink, inner.next);
    return;
  }
  let result: unknown;
  try {
    result = fn(context);
  } catch (error) {
    sink.settle(false, error);
    return;
  }
  if (result !== null && typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
    // Always handled, so a rejection after the call was settled otherwise is never unhandled.
    (result as PromiseLike<unknown>).then(
      (value) => sink.settle(true, value),
      (error: unknown) => sink.settle(false, error),
    );
  } else sink.settle(true, result);
}

/** Reports an outcome to `sink`, or returns it as a settled promise when there is none. */
export function refuse(sink: CallSink | undefined, error: unknown): Promise<never> | undefined {
  if (sink === undefined) return Promise.reject(error);
  sink.settle(false, error);
  return undefined;
}

/**
 * Settles `sink` when `settled` does (for a stage whose own work is a promise: a slow
 * path, a queue, a policy that is not staged), or returns `settled` when there is no sink.
 */
export function forward(sink: CallSink | undefined, settled: Promise<unknown>): Promise<unknown> | undefined {
  if (sink === undefined) return settled;
  settled.then(
    (value) => sink.settle(true, value),
    (error: unknown) => sink.settle(false, error),
  );
  return undefined;
}

/**
 * Runs `fn` (and `inner`) in `context`, as a promise: for a policy whose own machinery
 * needs one (a retry loop's later attempts, a dependency's action).
 */
export function runAsPromise(fn: (context: PolicyContext) => unknown, inner: Stage | undefined, context: PolicyContext): Promise<unknown> {
  if (inner === undefined) {
    try {
      return Promise.resolve(fn(context));
    } catch (error) {
      return Promise.reject(error);
    }
  }
  const sink = new PromiseSink();
  const promise = sink.promise();
  runInside(fn, inner, context, sink);
  return promise;
}

type Resolve = (value: unknown) => void;
type Reject = (reason: unknown) => void;
const noop = (): void => {};

/** A sink that settles a promise. */
class PromiseSink implements CallSink {
  resolve: Resolve = noop;
  reject: Reject = noop;
  promise(): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
  settle(ok: boolean, value: unknown): void {
    if (ok) this.resolve(value);
    else this.reject(value);
  }
}

/**
 * One call through a staged policy: its scope (the context it hands down), the sink it
 * reports to (or the promise `execute` returned), and a hook for what runs inside it.
 * A policy extends it so that one object is the call's state, the context its work
 * receives, and the sink of that work.
 */
export abstract class StageCall extends CallScope implements CallSink {
  /** Where this call's outcome goes; undefined when `execute` returned a promise of it. */
  declare sink: CallSink | undefined;
  declare resolve: Resolve;
  declare reject: Reject;

  /**
   * A call joining `joined`, the scope handed down as `options`, or (when `joined` is
   * undefined) a root following the caller's `signal` (with its `classify`).
   */
  protected constructor(options: PolicyExecuteOptions<never> | undefined, joined: CallScope | undefined) {
    if (joined !== undefined) super(joined, joined.attempt);
    else if (options === undefined) super(undefined, 1);
    else super(undefined, 1, options.signal ?? undefined, options.classify as Classifier<unknown> | undefined);
    this.sink = undefined;
    this.resolve = noop;
    this.reject = noop;
  }

  /** How the work inside this call ended (see {@link CallSink}). */
  abstract settle(ok: boolean, value: unknown): void;

  /** Makes `sink` this call's destination, or, without one, returns the promise of its outcome. */
  attach(sink: CallSink | undefined): Promise<unknown> | undefined {
    if (sink !== undefined) {
      this.sink = sink;
      return undefined;
    }
    // The resolvers go straight onto this (young) object: storing them anywhere long-lived
    // would cost the engine a write barrier per call.
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Reports this call's outcome outward: to its sink, or to the promise `execute` returned. */
  report(ok: boolean, value: unknown): void {
    const sink = this.sink;
    if (sink !== undefined) sink.settle(ok, value);
    else if (ok) this.resolve(value);
    else this.reject(value);
  }

  /** Reports the outcome of `settled`, a promise, once it settles. */
  reportWhen(settled: PromiseLike<unknown>): void {
    if (this.sink === undefined) {
      settled.then(this.resolve, this.reject);
      return;
    }
    settled.then(
      (value) => this.report(true, value),
      (error: unknown) => this.report(false, error),
    );
  }
}
