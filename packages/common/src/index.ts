export { abortReason, type LinkedSignal, linkSignal, sleep, TimeoutError } from './abort.ts';
export { type Clock, systemClock } from './clock.ts';
export { BallastError, InvalidOptionError, isBallastError, isInvalidOptionError, withoutStack } from './errors.ts';
export { Emitter, type Listener, type Unsubscribe } from './events.ts';
export { TimeDecayEwma } from './ewma.ts';
export { Histogram, type HistogramSummary } from './histogram.ts';
export { seededRandom } from './random.ts';
export { NumberRing } from './ring-buffer.ts';
export { RollingWindow } from './rolling-window.ts';
export {
  durationMs,
  finiteNumber,
  func,
  integer,
  MAX_TIMER_MS,
  type NumberBounds,
  nonEmptyString,
  oneOf,
  ratio,
} from './validate.ts';
