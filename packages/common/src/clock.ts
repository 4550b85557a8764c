/**
 * A source of time. Every time-based behaviour in Ballast reads time through a
 * `Clock`, so tests can drive it with fake timers instead of sleeping.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences are meaningful. */
  now(): number;
}

/**
 * The process clock: `performance.now()`, monotonic and unaffected by wall-clock
 * jumps. Vitest's and Sinon's fake timers replace `performance.now`, so code that
 * reads this clock follows fake time too.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
};
