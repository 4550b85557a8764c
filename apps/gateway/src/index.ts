export { createGateway, type Gateway, type GatewayOptions, STRATEGIES, type StrategyName, type Upstream } from './gateway.ts';
export {
  type DashboardSample,
  FrontDoor,
  type FrontDoorRecord,
  type GatewayObservability,
  gatewayObservability,
  type ObservabilityOptions,
  type Outcome,
  outcomeOf,
  type QueueView,
  type TenantUsageView,
  type Timeline,
  type UpstreamView,
  type WorkerView,
} from './observability/index.ts';
