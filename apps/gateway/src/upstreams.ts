import { CircuitBreaker } from '@ballast/circuit-breaker';
import { type BalancerConnection, connectBalancer, HealthPoller, HeartbeatMonitor, PhiAccrualDetector } from '@ballast/failure-detector';
import { LoadBalancer, strategyByName } from '@ballast/load-balancer';
import type { UpstreamResponse } from '@ballast/load-balancer/node';
import type { ResolvedGatewayOptions } from './options.ts';

/**
 * Whether an upstream's answer counts as the upstream failing — for outlier detection,
 * the circuit breakers and the logs alike. A 500 or 502 is a server failing; a 503 is
 * a server shedding load on purpose, which must not open its circuit (that would only
 * move its share onto the others, as loaded); 4xx are the client's doing.
 */
export function upstreamFailed(status: number): boolean {
  return status === 500 || status === 502;
}

/**
 * The API servers as the gateway sees them: a balancer over them, a phi-accrual failure
 * detector fed by health probes that marks silent ones down (and up when they answer
 * again), and a circuit breaker per server.
 */
export class UpstreamPool implements AsyncDisposable {
  readonly balancer: LoadBalancer;
  readonly monitor: HeartbeatMonitor;
  readonly breakers: ReadonlyMap<string, CircuitBreaker<UpstreamResponse>>;
  readonly #poller: HealthPoller;
  readonly #connection: BalancerConnection;

  constructor(o: ResolvedGatewayOptions) {
    this.balancer = new LoadBalancer({
      strategy: strategyByName(o.strategy),
      endpoints: o.upstreams.map((u) => ({ id: u.id, address: u.url })),
      // Ejections here are short: the failure detector handles dead servers, this handles flaky ones.
      outlierDetection: { consecutiveFailures: o.ejectAfterFailures, failureRate: 0, baseEjectionTimeMs: 2000, maxEjectionPercent: 34 },
    });
    this.monitor = new HeartbeatMonitor({
      detector: () =>
        new PhiAccrualDetector({
          threshold: o.phiThreshold,
          acceptableHeartbeatPauseMs: o.acceptablePauseMs,
          firstHeartbeatEstimateMs: o.healthIntervalMs,
        }),
      deadAfterMs: 5000,
    });
    this.#connection = connectBalancer(this.monitor, this.balancer);
    // Probes go to the port requests go to: a server whose public listener is stuck is down.
    this.#poller = new HealthPoller({
      monitor: this.monitor,
      intervalMs: o.healthIntervalMs,
      targets: o.upstreams.map((u) => ({ id: u.id, url: `${u.url}/healthz` })),
    });
    const breakers = new Map<string, CircuitBreaker<UpstreamResponse>>();
    for (const u of o.upstreams) {
      breakers.set(
        u.id,
        new CircuitBreaker<UpstreamResponse>({
          name: u.id,
          // Each attempt has its own time limit, from the request's deadline.
          timeout: false,
          resetTimeout: o.breakerResetMs,
          volumeThreshold: 10,
          errorThresholdPercentage: 50,
          isFailure: (response) => upstreamFailed(response.status),
        }),
      );
    }
    this.breakers = breakers;
  }

  /** The upstreams in rotation (healthy or warming up). */
  upCount(): number {
    return this.balancer.stats().endpoints.filter((e) => e.state === 'healthy' || e.state === 'warming').length;
  }

  async close(): Promise<void> {
    await this.#poller.close();
    this.#connection.close();
    this.monitor.close();
    for (const b of this.breakers.values()) b.close();
    this.balancer.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
