/**
 * The contenders of `npm run bench:circuit-breaker`'s per-call CPU time, each built in a
 * process of its own (see lib/isolated.ts): a call that succeeds, through Ballast's breaker
 * (its default 10 s timeout; without one, as cockatiel's breaker has none; without one and
 * with `recordLatency: false`, reading no clock, as cockatiel's breaker does without a listener;
 * and with every call sent through opossum's fire(), to show opossum's share), Ballast's breaker at the
 * commit before the policy contract, raw opossum at its defaults and cockatiel's breaker
 * (SamplingBreaker over a 10 s window, its closest match); and a call that fails (none of the
 * breakers opens), through Ballast's breaker now, before the hot-path work, before the
 * contract, and through cockatiel's.
 */
import { createRequire } from 'node:module';
import { CircuitBreaker, type OpossumBreaker } from '@ballast/circuit-breaker';
import { circuitBreaker as cockatielBreaker, handleAll, SamplingBreaker } from 'cockatiel';
import { baseline, hotpathBaseline, importBaseline } from '../lib/baseline.ts';
import type { Contender } from '../lib/isolated.ts';

// opossum ships no types: load it untyped and describe it with Ballast's own description of it.
const Opossum = createRequire(import.meta.url)('opossum') as new (action: (failing: boolean) => Promise<unknown>) => OpossumBreaker;

export const BARE = 'bare call';
export const BALLAST = 'Ballast';
export const BALLAST_NO_TIMEOUT = 'Ballast, no timeout';
export const BALLAST_UNTIMED = 'Ballast, no timeout, recordLatency: false';
export const THROUGH_FIRE = 'Ballast, every call through opossum fire()';
export const BEFORE = 'Ballast before';
export const OPOSSUM = 'opossum (defaults)';
export const COCKATIEL = 'cockatiel';
export const BARE_FAIL = 'failed call: bare';
export const BALLAST_FAIL = 'failed call: Ballast';
export const BALLAST_UNTIMED_FAIL = 'failed call: Ballast, no timeout, recordLatency: false';
export const TODAY_FAIL = 'failed call: Ballast before the hot-path work';
export const BEFORE_FAIL = 'failed call: Ballast before the contract';
export const COCKATIEL_FAIL = 'failed call: cockatiel';

/** The success-path contenders, in report order. */
export const SUCCESS: readonly string[] = [BARE, BALLAST, BALLAST_NO_TIMEOUT, BALLAST_UNTIMED, THROUGH_FIRE, BEFORE, OPOSSUM, COCKATIEL];
/** The failure-path contenders, in report order. */
export const FAILURE: readonly string[] = [BARE_FAIL, BALLAST_FAIL, BALLAST_UNTIMED_FAIL, TODAY_FAIL, BEFORE_FAIL, COCKATIEL_FAIL];

/** The contenders of `names` this run can build (those of an unavailable baseline commit left out). */
export function available(names: readonly string[]): string[] {
  const before = 'sha' in baseline();
  const today = 'sha' in hotpathBaseline();
  return names.filter((n) => ((n !== BEFORE && n !== BEFORE_FAIL) || before) && (n !== TODAY_FAIL || today));
}

const value = { ok: true };
const failure = new Error('upstream failed'); // built once: the bench times breakers, not stack capture
const succeed = (): Promise<typeof value> => Promise.resolve(value);
const fail = (): Promise<never> => Promise.reject(failure);
const swallow = (): undefined => undefined;

interface OldBreakerModule {
  CircuitBreaker: new (options: object) => { execute(fn: () => Promise<unknown>): Promise<unknown>; close(): void };
}

/** Ballast's breaker at a baseline commit; its options as that commit names them. */
async function old(ref: string | undefined, options: object, fn: () => Promise<unknown>): Promise<Contender> {
  const module = await importBaseline<OldBreakerModule>('circuit-breaker', ref);
  if (!module) throw new Error(`the baseline commit ${ref ?? ''} is unavailable`);
  const breaker = new module.CircuitBreaker(options);
  return { op: () => breaker.execute(fn).catch(swallow), close: () => breaker.close() };
}

function ballast(timeoutMs: number | false, fn: () => Promise<unknown>, recordLatency = true): Contender {
  // Never opens on the failure rate (>100% is impossible), so failures keep going through it.
  const breaker = new CircuitBreaker({ name: 'bench', timeoutMs, recordLatency, opossum: { errorThresholdPercentage: 100 } });
  return { op: fn === fail ? () => breaker.execute(fn).catch(swallow) : () => breaker.execute(fn), close: () => breaker.dispose() };
}

function cockatiel(fn: () => Promise<unknown>, minimumRps?: number): Contender {
  const breaker = new SamplingBreaker({ threshold: 0.5, duration: 10_000, ...(minimumRps === undefined ? {} : { minimumRps }) });
  const policy = cockatielBreaker(handleAll, { halfOpenAfter: 30_000, breaker });
  return { op: fn === fail ? () => policy.execute(fn).catch(swallow) : () => policy.execute(fn) };
}

/** Builds the contender `name` (see lib/isolated.ts). */
export async function build(name: string): Promise<Contender> {
  switch (name) {
    case BARE:
      return { op: succeed };
    case BALLAST:
      return ballast(10_000, succeed);
    case BALLAST_NO_TIMEOUT:
      return ballast(false, succeed);
    case BALLAST_UNTIMED:
      // What cockatiel's breaker does per call: no timeout, no clock reading (it times a call only for a listener).
      return ballast(false, succeed, false);
    case THROUGH_FIRE: {
      // A listener on opossum's own `fire` event makes Ballast send every call through fire().
      const breaker = new CircuitBreaker({ name: 'bench', opossum: { errorThresholdPercentage: 100 } });
      breaker.opossum.on('fire', () => undefined);
      return { op: () => breaker.execute(succeed), close: () => breaker.dispose() };
    }
    case BEFORE:
      return old(undefined, { name: 'bench', errorThresholdPercentage: 100, timeout: 10_000 }, succeed);
    case OPOSSUM: {
      // opossum at its defaults (10 s window, percentiles on, 10 s timeout).
      const breaker = new Opossum((failing: boolean) => (failing ? fail() : succeed()));
      return { op: () => breaker.fire(false), close: () => breaker.shutdown() };
    }
    case COCKATIEL:
      return cockatiel(succeed);
    case BARE_FAIL:
      return { op: () => fail().catch(swallow) };
    case BALLAST_FAIL:
      return ballast(10_000, fail);
    case BALLAST_UNTIMED_FAIL:
      return ballast(false, fail, false);
    case TODAY_FAIL:
      return old(hotpathBaseline().ref, { name: 'bench', timeoutMs: 10_000, opossum: { errorThresholdPercentage: 100 } }, fail);
    case BEFORE_FAIL:
      return old(undefined, { name: 'bench', errorThresholdPercentage: 100, timeout: 10_000 }, fail);
    case COCKATIEL_FAIL:
      // It opens only above minimumRps calls per second: never, so failures keep going through it.
      return cockatiel(fail, Number.MAX_SAFE_INTEGER);
    default:
      throw new Error(`no contender ${JSON.stringify(name)}`);
  }
}
