/**
 * The contenders of `npm run bench:retry`'s per-call overhead, each built in a process of
 * its own (see lib/isolated.ts): a call that succeeds on its first attempt under Ballast's
 * retry policy (at its defaults and with more options), raw p-retry and cockatiel's retry,
 * and Ballast's policy at the commit before the policy contract; and a call whose first
 * attempt fails with an error that is not retried (the path through p-retry), under the
 * policy now, at the commit before the hot-path work ("today") and before the contract.
 */
import { constantBackoff, RetryPolicy, ratioBudget, retry } from '@ballast/retry';
import { retry as cockatielRetry, ExponentialBackoff, handleAll } from 'cockatiel';
import pRetry from 'p-retry';
import { baseline, hotpathBaseline, importBaseline } from '../lib/baseline.ts';
import type { Contender } from '../lib/isolated.ts';

export const RAW = 'raw operation (no retry)';
export const P_RETRY = 'p-retry 9 (retries: 2)';
export const COCKATIEL = 'cockatiel 3 retry (maxAttempts: 2)';
export const BALLAST_DEFAULTS = 'Ballast RetryPolicy.execute (defaults: 3 attempts, 30 s deadline)';
export const BALLAST_SIGNAL = 'Ballast execute, operation reads its signal';
export const BALLAST_FULL = 'Ballast execute + timeoutMs + caller signal + ratio budget';
export const BALLAST_ONE_SHOT = 'Ballast retry() one-shot (builds a policy per call)';
export const BEFORE = 'Ballast RetryPolicy.execute before the contract (baseline commit, defaults)';
export const BALLAST_FAIL_ONCE = 'failure path: Ballast execute, an error not retried (defaults)';
export const TODAY_FAIL_ONCE = 'failure path: the same before the hot-path work';
export const BEFORE_FAIL_ONCE = 'failure path: the same before the contract';

const NAMES: readonly string[] = [
  RAW,
  P_RETRY,
  COCKATIEL,
  BALLAST_DEFAULTS,
  BALLAST_SIGNAL,
  BALLAST_FULL,
  BALLAST_ONE_SHOT,
  BEFORE,
  BALLAST_FAIL_ONCE,
  TODAY_FAIL_ONCE,
  BEFORE_FAIL_ONCE,
];

/** The contenders this run can build (those of an unavailable baseline commit left out). */
export function availableNames(): string[] {
  const before = 'sha' in baseline();
  const today = 'sha' in hotpathBaseline();
  return NAMES.filter((name) => (name !== BEFORE && name !== BEFORE_FAIL_ONCE) || before).filter(
    (name) => name !== TODAY_FAIL_ONCE || today,
  );
}

const op = async (): Promise<number> => 1;
const opWithSignal = async ({ signal }: { signal: AbortSignal }): Promise<number> => (signal.aborted ? 0 : 1);
// Built once: the bench times the policy, not stack capture. A TypeError is not retried, by every version's default.
const notRetried = new TypeError('bad input');
const failing = async (): Promise<never> => {
  throw notRetried;
};

interface OldRetry {
  RetryPolicy: new (
    options?: object,
  ) => { execute(fn: (c: { signal: AbortSignal }) => unknown, o?: object): Promise<unknown>; close(): void };
}

async function old(ref: string | undefined, fn: () => Promise<unknown>, swallow: boolean): Promise<Contender> {
  const module = await importBaseline<OldRetry>('retry', ref);
  if (!module) throw new Error(`the baseline commit ${ref ?? ''} is unavailable`);
  const policy = new module.RetryPolicy();
  return {
    op: swallow ? () => policy.execute(fn).catch(() => undefined) : () => policy.execute(fn),
    close: () => policy.close(),
  };
}

/** Builds the contender `name` (see lib/isolated.ts). */
export async function build(name: string): Promise<Contender> {
  switch (name) {
    case RAW:
      return { op };
    case P_RETRY:
      return { op: () => pRetry(op, { retries: 2 }) };
    case COCKATIEL: {
      const policy = cockatielRetry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() });
      return { op: () => policy.execute(op) };
    }
    case BALLAST_DEFAULTS: {
      const policy = new RetryPolicy();
      return { op: () => policy.execute(op), close: () => policy.close() };
    }
    case BALLAST_SIGNAL: {
      const policy = new RetryPolicy();
      return { op: () => policy.execute(opWithSignal), close: () => policy.close() };
    }
    case BALLAST_FULL: {
      const policy = new RetryPolicy({ timeoutMs: 1_000, budget: ratioBudget() });
      const signal = new AbortController().signal;
      return { op: () => policy.execute(opWithSignal, { signal }), close: () => policy.close() };
    }
    case BALLAST_ONE_SHOT: {
      const backoff = constantBackoff({ delayMs: 100 });
      return { op: () => retry(op, { backoff }) };
    }
    case BEFORE:
      return old(undefined, op, false);
    case BALLAST_FAIL_ONCE: {
      const policy = new RetryPolicy();
      return { op: () => policy.execute(failing).catch(() => undefined), close: () => policy.close() };
    }
    case TODAY_FAIL_ONCE:
      return old(hotpathBaseline().ref, failing, true);
    case BEFORE_FAIL_ONCE:
      return old(undefined, failing, true);
    default:
      throw new Error(`no contender ${JSON.stringify(name)}`);
  }
}
