export { edgeFromEnv } from './env.ts';
export { type GatewayErrorCode, upstreamFailure } from './errors.ts';
export { createGateway, type Gateway } from './gateway.ts';
export type { GatewayEnv, UpstreamAnswer } from './middleware.ts';
export {
  type DashboardSample,
  FrontDoor,
  type FrontDoorRecord,
  type GatewayObservability,
  gatewayObservability,
  type LogLine,
  type LogTrace,
  type ObservabilityOptions,
  type Outcome,
  outcomeOf,
  type QueueView,
  renderTrace,
  type TenantUsageView,
  type Timeline,
  traceFromLogs,
  type UpstreamView,
  type WorkerView,
} from './observability/index.ts';
export {
  type GatewayOptions,
  type ResolvedGatewayOptions,
  resolveGatewayOptions,
  STRATEGIES,
  type StrategyName,
  type ThrottleOptions,
  type Upstream,
} from './options.ts';
export { attemptTimeoutMs } from './proxy.ts';
export {
  type ClientRateLimitOptions,
  clientRateLimiter,
  type ResolvedClientRateLimit,
  rateLimitClients,
  resolveClientRateLimit,
} from './rate-limit.ts';
export { judge, UpstreamPool } from './upstreams.ts';
