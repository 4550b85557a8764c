// Shared from @ballast/common and named in this package's README: importable from here, so strict
// installs (pnpm, npm --install-strategy=linked) need no direct @ballast/common dependency.
export { InvalidOptionError, isInvalidOptionError, seededRandom } from '@ballast/common';
export { type BalancedFetch, type BalancedFetchOptions, type BalancedRequestInit, balancedFetch } from './balanced-fetch.ts';
export {
  type EjectionReason,
  type EndpointStats,
  LoadBalancer,
  type LoadBalancerEvents,
  type LoadBalancerStats,
} from './balancer.ts';
export { isNoEndpointAvailableError, type LoadBalancerErrorCode, NoEndpointAvailableError, type NoEndpointReason } from './errors.ts';
export { type ForwardOptions, isUpstreamError, UpstreamError, type UpstreamFailure } from './forward.ts';
export {
  createForwarding,
  endToEndHeaders,
  FORWARDING_HEADERS,
  type Forwarding,
  type ForwardingOptions,
  type ForwardingPeer,
  forwardingHeaders,
  HOP_BY_HOP_HEADERS,
  type NodeHeaders,
  type OutgoingHeaders,
  stripHopByHop,
} from './forwarding.ts';
export type { LoadBalancerOptions, OutlierDetectionOptions, SlowStartOptions } from './options.ts';
export { STRATEGY_NAMES, type StrategyName, strategyByName } from './strategies/by-name.ts';
export { type DynamicOptions, type DynamicStrategy, dynamic } from './strategies/dynamic.ts';
export { type HashAffinityOptions, hashAffinity } from './strategies/hash-affinity.ts';
export { leastConnections } from './strategies/least-connections.ts';
export { type PowerOfTwoChoicesOptions, powerOfTwoChoices } from './strategies/p2c.ts';
export { type PeakEwmaOptions, peakEwma } from './strategies/peak-ewma.ts';
export { random, weightedRandom } from './strategies/random.ts';
export { roundRobin } from './strategies/round-robin.ts';
export { weightedRoundRobin } from './strategies/weighted-round-robin.ts';
export { TRUSTED_PROXY_PRESETS, TrustedProxies } from './trusted-proxies.ts';
export type {
  BalancingStrategy,
  DoneReport,
  Endpoint,
  EndpointHealth,
  EndpointInput,
  EndpointState,
  Outcome,
  PickContext,
  PickHandle,
  PickOptions,
  PickOutcome,
  Strategy,
} from './types.ts';
