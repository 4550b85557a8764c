export { type GatewayErrorCode, upstreamFailure } from './errors.ts';
export { createGateway, type Gateway } from './gateway.ts';
export type { GatewayEnv, UpstreamAnswer } from './middleware.ts';
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
export { UpstreamPool, upstreamFailed } from './upstreams.ts';
