// Shared from @ballast/common and named in this package's README: importable from here, so strict
// installs (pnpm, npm --install-strategy=linked) need no direct @ballast/common dependency.
export { InvalidOptionError, isInvalidOptionError } from '@ballast/common';
export { type BalancerConnection, type BalancerControl, type ConnectBalancerOptions, connectBalancer } from './balancer.ts';
export type { FailureDetector } from './detector.ts';
export { FailureDetectorError, type FailureDetectorErrorCode, isFailureDetectorError } from './errors.ts';
export { ExponentialDetector, type ExponentialOptions } from './exponential.ts';
export { FixedTimeoutDetector, type FixedTimeoutOptions } from './fixed-timeout.ts';
export {
  HealthPoller,
  type HealthPollerEvents,
  type HealthPollerOptions,
  type HealthPollerStats,
  type HealthTarget,
  type HttpHeartbeatSenderOptions,
  httpHeartbeatSender,
  type ProbeEvent,
} from './http.ts';
export { IntervalDetector, type IntervalDetectorOptions } from './interval-detector.ts';
export { decodeHeartbeat, type HeartbeatMessage, MAX_NODE_ID_LENGTH, parseHeartbeat } from './message.ts';
export {
  type AliveEvent,
  type DeadEvent,
  HeartbeatMonitor,
  type HeartbeatMonitorEvents,
  type HeartbeatMonitorOptions,
  type HeartbeatMonitorStats,
  type JoinEvent,
  type LeaveEvent,
  type NodeState,
  type NodeStats,
  type SuspectEvent,
} from './monitor.ts';
export { PhiAccrualDetector, type PhiAccrualOptions, phi } from './phi-accrual.ts';
export { type DetectionTimes, measureQuality, type QualityPhase, type QualityReport, type QualityScenario } from './quality.ts';
export {
  DEFAULT_HEARTBEAT_CHANNEL,
  type RedisHeartbeatReceiver,
  type RedisHeartbeatReceiverOptions,
  type RedisHeartbeatReceiverStats,
  type RedisHeartbeatSenderOptions,
  type RedisPublisher,
  type RedisSubscriber,
  receiveRedisHeartbeats,
  redisHeartbeatSender,
} from './redis.ts';
export {
  HeartbeatSender,
  type HeartbeatSenderEvents,
  type HeartbeatSenderOptions,
  type HeartbeatSenderStats,
  type HeartbeatTransport,
  type PacingOptions,
} from './sender.ts';
