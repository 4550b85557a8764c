/**
 * The contenders of `npm run bench:backpressure`'s per-call limiter cost, each built in a
 * process of its own (see lib/isolated.ts): a call that a concurrency limiter admits at
 * once, under Ballast's `execute` (fixed and adaptive limits), its older `run`, the same at
 * the commit before the policy contract, and cockatiel's bulkhead, the closest peer; and a
 * rejected call under `execute` now and before the hot-path work.
 */
import { ConcurrencyLimiter, VegasLimit } from '@ballast/backpressure';
import { bulkhead } from 'cockatiel';
import { baseline, hotpathBaseline, importBaseline } from '../lib/baseline.ts';
import type { Contender } from '../lib/isolated.ts';

export const BARE = 'bare call';
export const LIMITER_EXECUTE = 'Ballast ConcurrencyLimiter.execute (fixed limit)';
export const LIMITER_VEGAS = 'Ballast ConcurrencyLimiter.execute (Vegas, adaptive)';
export const LIMITER_RUN = 'Ballast ConcurrencyLimiter.run (fixed limit)';
export const LIMITER_BEFORE = 'Ballast ConcurrencyLimiter.run, before the contract (baseline commit, fixed limit)';
export const BULKHEAD = 'cockatiel bulkhead(limit).execute';
export const BARE_FAIL = 'rejected call: bare';
export const LIMITER_FAIL = 'rejected call: Ballast execute (fixed limit)';
export const LIMITER_FAIL_TODAY = 'rejected call: Ballast execute, before the hot-path work';

/** The success-path contenders, in report order. */
export const SUCCESS: readonly string[] = [BARE, LIMITER_EXECUTE, LIMITER_VEGAS, LIMITER_RUN, LIMITER_BEFORE, BULKHEAD];
/** The failure-path contenders, in report order. */
export const FAILURE: readonly string[] = [BARE_FAIL, LIMITER_FAIL, LIMITER_FAIL_TODAY];

/** The contenders of `names` this run can build (those of an unavailable baseline commit left out). */
export function available(names: readonly string[]): string[] {
  const before = 'sha' in baseline();
  const today = 'sha' in hotpathBaseline();
  return names.filter((n) => (n !== LIMITER_BEFORE || before) && (n !== LIMITER_FAIL_TODAY || today));
}

const value = { ok: true };
const op = async (): Promise<typeof value> => value;
const failure = new Error('upstream failed'); // built once: the bench times limiters, not stack capture
const fail = async (): Promise<never> => {
  throw failure;
};
const swallow = (): undefined => undefined;

interface OldBackpressure {
  ConcurrencyLimiter: new (
    options?: object,
  ) => {
    run(fn: () => unknown): Promise<unknown>;
    execute(fn: () => unknown): Promise<unknown>;
    close(): void;
  };
}

/** Builds the contender `name` (see lib/isolated.ts). */
export async function build(name: string): Promise<Contender> {
  switch (name) {
    case BARE:
      return { op };
    case LIMITER_EXECUTE:
    case LIMITER_RUN: {
      const limiter = new ConcurrencyLimiter({ limit: 1_000_000 });
      return { op: name === LIMITER_RUN ? () => limiter.run(op) : () => limiter.execute(op), close: () => limiter.close() };
    }
    case LIMITER_VEGAS: {
      const limiter = new ConcurrencyLimiter({ limit: new VegasLimit({ maxLimit: 1_000_000, initialLimit: 1_000_000 }) });
      return { op: () => limiter.execute(op), close: () => limiter.close() };
    }
    case LIMITER_BEFORE: {
      const old = await importBaseline<OldBackpressure>('backpressure');
      if (!old) throw new Error('the baseline commit is unavailable');
      const limiter = new old.ConcurrencyLimiter({ limit: 1_000_000 });
      return { op: () => limiter.run(op), close: () => limiter.close() };
    }
    case BULKHEAD: {
      const peer = bulkhead(1_000_000);
      return { op: () => peer.execute(op) };
    }
    case BARE_FAIL:
      return { op: () => fail().catch(swallow) };
    case LIMITER_FAIL: {
      const limiter = new ConcurrencyLimiter({ limit: 1_000_000 });
      return { op: () => limiter.execute(fail).catch(swallow), close: () => limiter.close() };
    }
    case LIMITER_FAIL_TODAY: {
      const old = await importBaseline<OldBackpressure>('backpressure', hotpathBaseline().ref);
      if (!old) throw new Error('the commit before the hot-path work is unavailable');
      const limiter = new old.ConcurrencyLimiter({ limit: 1_000_000 });
      return { op: () => limiter.execute(fail).catch(swallow), close: () => limiter.close() };
    }
    default:
      throw new Error(`no contender ${JSON.stringify(name)}`);
  }
}
