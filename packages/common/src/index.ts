export { abortReason, isTimeoutError, type LinkedSignal, linkSignal, sleep, TimeoutError } from './abort.ts';
export { type Clock, systemClock } from './clock.ts';
export { type DeadlineEntry, DeadlineList } from './deadline-list.ts';
export {
  BallastError,
  type CommonErrorCode,
  InvalidOptionError,
  isBallastError,
  isInvalidOptionError,
  isPolicyClosedError,
  PolicyClosedError,
  withoutStack,
} from './errors.ts';
export {
  Emitter,
  type EmitterOptions,
  type Listener,
  type ListenerErrorHandler,
  reportListenerError,
  type Unsubscribe,
} from './events.ts';
export { TimeDecayEwma } from './ewma.ts';
export { Histogram, type HistogramSummary } from './histogram.ts';
export { type HookHost, type HookPlugin, hookPlugin } from './hook-plugin.ts';
export { type ErrorAnswer, type ErrorBody, errorAnswer, errorBody, retryAfterSeconds } from './http.ts';
export { clientGoneSignal, type NodeResponse, onResponseEnd, sendErrorAnswer } from './node-response.ts';
export {
  CallScope,
  type Classifier,
  declareJoinsScope,
  joinsScope,
  type Policy,
  type PolicyContext,
  type PolicyExecuteOptions,
  type PolicyOutcome,
  uncancellableContext,
  type Verdict,
} from './policy.ts';
export {
  type CollectingMetric,
  type MetricClass,
  type MetricFill,
  type MetricRegistry,
  type MetricWrite,
  ScrapedMetrics,
  type ScrapedMetricsOptions,
} from './prometheus.ts';
export { nearestRank } from './quantile.ts';
export { seededRandom } from './random.ts';
export { NumberRing } from './ring-buffer.ts';
export { RollingWindow } from './rolling-window.ts';
export {
  type CallSink,
  declareStaged,
  forward,
  isStaged,
  refuse,
  runAsPromise,
  runInside,
  runStage,
  type Stage,
  StageCall,
  type StagedPolicy,
  type StageRunner,
} from './stage.ts';
export { TimeoutPolicy, type TimeoutPolicyEvents, type TimeoutPolicyOptions, type TimeoutPolicyStats } from './timeout.ts';
export {
  boolean,
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
export { PolicyChain, wrap } from './wrap.ts';
