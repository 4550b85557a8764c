export { createGateway, type Gateway, type GatewayOptions, STRATEGIES, type StrategyName, type Upstream } from './gateway.ts';
