import { SHED_HEADER } from '@ballast/app-shared';
import { ConcurrencyLimiter } from '@ballast/backpressure';
import { CircuitBreaker } from '@ballast/circuit-breaker';
import { type PolicyChain, type PolicyOutcome, type Verdict, wrap } from '@ballast/common';
import { type BalancerConnection, connectBalancer, HealthPoller, HeartbeatMonitor, PhiAccrualDetector } from '@ballast/failure-detector';
import { LoadBalancer, strategyByName } from '@ballast/load-balancer';
import type { UpstreamResponse } from '@ballast/load-balancer/node';
import type { ResolvedGatewayOptions } from './options.ts';

/**
 * How one attempt on an upstream ended, judged once for every policy that learns from it
 * (the balancer's outlier detection, the circuit breaker, the per-upstream limiter, the
 * adaptive throttle, the logs):
 *
 * - no answer (refused, reset, timed out), or a 500 or 502: `failure` — the server is failing;
 * - a 503 with `x-ballast-shed`: `overload` — the server shed it on purpose;
 * - a 4xx, 429 included (a client over its own rate or share): `ignore` — the client's
 *   doing, saying nothing about the server;
 * - anything else: `success`.
 */
export function judge(outcome: PolicyOutcome<UpstreamResponse>): Verdict {
  if (!outcome.ok) return 'failure';
  const { status, headers } = outcome.value;
  if (status === 500 || status === 502) return 'failure';
  if (status === 503 && headers[SHED_HEADER] !== undefined) return 'overload';
  return status >= 400 && status < 500 ? 'ignore' : 'success';
}

/**
 * {@link judge} as the per-upstream chain takes it: a server shedding load is not failing,
 * so an `overload` must not count against its circuit (opening it would only move its
 * share onto the others, as loaded).
 */
function judgeForCircuit(outcome: PolicyOutcome<UpstreamResponse>): Verdict {
  const verdict = judge(outcome);
  return verdict === 'overload' ? 'ignore' : verdict;
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
  readonly #chains = new Map<string, PolicyChain<UpstreamResponse>>();
  readonly #limiters: ConcurrencyLimiter[] = [];
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
      // Each attempt has its own time limit, from the request's deadline: no breaker timeout.
      const opossum = { volumeThreshold: 10, errorThresholdPercentage: 50 };
      const breaker = new CircuitBreaker<UpstreamResponse>({ name: u.id, timeoutMs: false, resetTimeoutMs: o.breakerResetMs, opossum });
      const limiter = new ConcurrencyLimiter({ name: u.id, limit: o.maxPerUpstream, maxQueue: 0 });
      breakers.set(u.id, breaker);
      this.#limiters.push(limiter);
      this.#chains.set(u.id, wrap<UpstreamResponse>(breaker, limiter));
    }
    this.breakers = breakers;
  }

  /**
   * Runs one attempt on upstream `id` through its policies, composed with `wrap()`: its
   * circuit breaker (outermost), then its concurrency limit; one signal (the attempt's)
   * and one verdict ({@link judge}) for both. A refusal by either means the request never
   * reached the upstream, so the proxy may send it to another.
   */
  attempt(id: string, signal: AbortSignal, send: (signal: AbortSignal) => Promise<UpstreamResponse>): Promise<UpstreamResponse> {
    const chain = this.#chains.get(id);
    if (!chain) return send(signal);
    return chain.execute((context) => send(context.signal), { signal, classify: judgeForCircuit });
  }

  /** The upstreams in rotation (healthy or warming up). */
  upCount(): number {
    return this.balancer.stats().endpoints.filter((e) => e.state === 'healthy' || e.state === 'warming').length;
  }

  async close(): Promise<void> {
    await this.#poller.close();
    this.#connection.close();
    this.monitor.close();
    for (const b of this.breakers.values()) b.dispose();
    for (const l of this.#limiters) l.close();
    this.balancer.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
