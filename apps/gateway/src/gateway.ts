import {
  type AppEnv,
  anonymous,
  BodyBudget,
  createLogger,
  errorHandler,
  forApp,
  measure,
  notFound,
  operationalApp,
  requestContext,
} from '@ballast/app-shared';
import { AdaptiveThrottle, ConcurrencyLimiter, type KeyedRateLimiter } from '@ballast/backpressure';
import type { CircuitBreaker } from '@ballast/circuit-breaker';
import type { HeartbeatMonitor } from '@ballast/failure-detector';
import { createForwarding, type LoadBalancer } from '@ballast/load-balancer';
import type { UpstreamResponse } from '@ballast/load-balancer/node';
import { RatioBudget } from '@ballast/retry';
import { Hono } from 'hono';
import { Registry } from 'prom-client';
import { gatewayMetrics } from './metrics.ts';
import { acceptedImages, admission, bufferBody, type GatewayEnv, identifyClient, publicRoutes, throttleGate } from './middleware.ts';
import { type GatewayObservability, gatewayObservability } from './observability/index.ts';
import { type GatewayOptions, type ResolvedGatewayOptions, resolveGatewayOptions } from './options.ts';
import { gatewayProxy } from './proxy.ts';
import { clientRateLimiter, rateLimitClients } from './rate-limit.ts';
import { RefusalMemory, rememberRefusals } from './refusals.ts';
import { UpstreamPool } from './upstreams.ts';

/** A running gateway. */
export interface Gateway extends AsyncDisposable {
  /** The public app: the API routes only, proxied. Serve it with `listen()` of @ballast/app-shared (it needs Node's request). */
  readonly app: Hono<GatewayEnv>;
  /** The operational app: `/healthz`, `/readyz`, `/metrics`, `/gateway/stats`; serve it on a port the public does not reach. */
  readonly ops: Hono<AppEnv>;
  readonly balancer: LoadBalancer;
  readonly monitor: HeartbeatMonitor;
  readonly registry: Registry;
  /** Front-door SLIs, stage timings and the dashboard; undefined when `observability: false`. */
  readonly observability: GatewayObservability | undefined;
  breaker(id: string): CircuitBreaker<UpstreamResponse> | undefined;
  /** Stops probing, closes the proxy's connections, the breakers, the balancer and the limiters. */
  close(): Promise<void>;
}

/**
 * The gateway: a reverse proxy over the API servers, built as one Hono middleware chain —
 * request context (id, logger) → metrics → errors → the client's identity → its request
 * rate → public routes only → authentication → refusals remembered → adaptive throttling → body buffering (budget, rate, time) →
 * admission → @ballast/load-balancer's Node proxy, whose attempts go through a circuit
 * breaker per upstream and are resent elsewhere, under a retry budget, only when they
 * never reached one. Upstreams are picked by @ballast/load-balancer (P2C by default) and
 * taken out of rotation by @ballast/failure-detector's phi-accrual detector.
 */
export function createGateway(options: GatewayOptions): Gateway {
  const o = resolveGatewayOptions(options);
  const log = (options.logger ?? createLogger()).child({ service: 'gateway' });
  const registry = options.registry ?? new Registry();
  const pool = new UpstreamPool(o);
  const budget = new RatioBudget({ ratio: o.retryBudgetRatio, minRetriesPerSec: o.minRetriesPerSec });
  const throttle = o.throttle
    ? new AdaptiveThrottle({ name: 'gateway', k: o.throttle.k, windowMs: o.throttle.windowMs, buckets: 10 })
    : undefined;
  const limiter = new ConcurrencyLimiter({ name: 'gateway', limit: o.maxInflight, maxQueue: 0 });
  const perClient = o.rateLimit ? clientRateLimiter(o.rateLimit) : undefined;
  const bodies = new BodyBudget(o.bodyBudgetBytes, o.bodyBudgetPerClientBytes);
  const refusals = o.holdRefusedMs > 0 ? new RefusalMemory({ maxHoldMs: o.holdRefusedMs }) : undefined;
  const forwarding = createForwarding({ trustedProxies: o.trustedProxies });
  const metrics = gatewayMetrics(registry, pool, limiter, bodies);
  const proxy = gatewayProxy(o, pool, budget, () => metrics.retries.inc());
  const observability =
    options.observability === false
      ? undefined
      : gatewayObservability(
          {
            registry,
            balancer: pool.balancer,
            monitor: pool.monitor,
            circuits: () => new Map([...pool.breakers].map(([id, b]) => [id, b.state])),
          },
          options.observability,
        );

  const app = new Hono<GatewayEnv>();
  app.use(requestContext<GatewayEnv>(log));
  if (observability) app.use(observability.middleware);
  app.use(measure(metrics.requests, (c) => ({ upstream: String(c.var.fields.upstream ?? 'none') })));
  app.onError(errorHandler());
  app.notFound(notFound);
  app.use(identifyClient(forwarding));
  if (perClient) app.use(rateLimitClients(perClient, () => metrics.rateLimited.inc()));
  app.use(publicRoutes());
  app.use(forApp<GatewayEnv>(options.authenticate ?? anonymous()));
  if (refusals) app.use(rememberRefusals(refusals));
  if (throttle && o.throttle) app.use(throttleGate(throttle, o.throttle.minRequests, () => metrics.throttled.inc()));
  app.use(bufferBody(o.body, bodies));
  app.use(acceptedImages(o.inputFormats));
  app.use(admission(limiter));
  app.all('*', proxy.handler);

  const ops = opsApp(o, { pool, registry, budget, throttle, limiter, perClient, bodies, refusals });
  observability?.mount(ops);
  options.opsRoutes?.(ops);
  const close = async (): Promise<void> => {
    observability?.close();
    await proxy.close();
    await pool.close();
    budget.close();
    limiter.close();
    perClient?.close();
    throttle?.close();
  };
  const breaker = (id: string) => pool.breakers.get(id);
  return {
    app,
    ops,
    balancer: pool.balancer,
    monitor: pool.monitor,
    registry,
    observability,
    breaker,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** What the operational app reports on. */
interface Reported {
  pool: UpstreamPool;
  registry: Registry;
  budget: RatioBudget;
  throttle: AdaptiveThrottle | undefined;
  limiter: ConcurrencyLimiter;
  perClient: KeyedRateLimiter | undefined;
  bodies: BodyBudget;
  refusals: RefusalMemory | undefined;
}

/** `/healthz`, `/readyz` (ready while an upstream is up), `/metrics`, and `/gateway/stats` (internal addresses and states). */
function opsApp(o: ResolvedGatewayOptions, r: Reported): Hono<AppEnv> {
  const ops = operationalApp({
    service: 'gateway',
    registry: r.registry,
    ready: () => {
      const up = r.pool.upCount();
      return { ready: up > 0, upstreamsUp: up, upstreams: r.pool.balancer.size };
    },
  });
  ops.get('/gateway/stats', (c) =>
    c.json({
      strategy: o.strategy,
      balancer: r.pool.balancer.stats(),
      breakers: Object.fromEntries([...r.pool.breakers].map(([id, b]) => [id, b.state])),
      budget: r.budget.stats(),
      throttle: r.throttle?.stats(),
      monitor: r.pool.monitor.stats(),
      inflight: r.limiter.inflight,
      rateLimit: r.perClient?.stats(),
      bodies: r.bodies.stats(),
      refusals: r.refusals?.stats(),
    }),
  );
  return ops;
}
