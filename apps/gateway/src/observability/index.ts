import { type AppEnv, errorResponse } from '@ballast/app-shared';
import type { HeartbeatMonitor } from '@ballast/failure-detector';
import { failureDetectorMetrics } from '@ballast/failure-detector/prometheus';
import type { LoadBalancer } from '@ballast/load-balancer';
import type { Hono, MiddlewareHandler } from 'hono';
import type { Registry } from 'prom-client';
import { type DashboardOptions, DashboardSampler, type DashboardSources, dashboardRoutes, type UpstreamView } from './dashboard.ts';
import { FrontDoor, type FrontDoorOptions } from './front-door.ts';
import { frontDoorMetrics } from './middleware.ts';

export { OUTCOMES, type Outcome, outcomeOf, type Route, routeOf, type SizeClass, SLO_IMAGE_BYTES, sizeClassOf } from './classify.ts';
export {
  type DashboardOptions,
  type DashboardSample,
  DashboardSampler,
  type DashboardSources,
  dashboardRoutes,
  type QueueView,
  type TenantUsageView,
  type UpstreamView,
  type WorkerView,
} from './dashboard.ts';
export { FrontDoor, type FrontDoorOptions, type FrontDoorRecord, IMAGE_BUCKETS, type LiveWindow, type Timeline } from './front-door.ts';
export { frontDoorMetrics } from './middleware.ts';
export { TenantLabels } from './tenants.ts';
export { type LogLine, type LogTrace, renderTrace, traceFromLogs } from './trace.ts';

/**
 * What the gateway's observability is given beyond its own parts: views of the queue,
 * the workers, per-tenant usage and the brownout dimmer, for the dashboard (the embedded
 * system passes them; a gateway on its own shows those panels as not connected).
 */
export interface ObservabilityOptions
  extends Partial<Omit<DashboardSources, 'frontDoor' | 'upstreams'>>,
    Omit<FrontDoorOptions, 'registry'> {
  /** Dashboard sampling. */
  dashboard?: DashboardOptions;
}

/** The gateway parts observability reads. */
export interface ObservedGateway {
  registry: Registry;
  balancer: LoadBalancer;
  monitor: HeartbeatMonitor;
  /** Circuit state of each upstream's breaker. */
  circuits(): ReadonlyMap<string, string>;
}

/** The gateway's observability: front-door SLIs, stage timings, the dashboard and request timelines. */
export interface GatewayObservability {
  readonly frontDoor: FrontDoor;
  readonly sampler: DashboardSampler;
  /** The measuring middleware, first on the public app. */
  readonly middleware: MiddlewareHandler<AppEnv>;
  /** Adds `/dashboard…` and `/trace/:requestId` to the operational app. */
  mount(ops: Hono<AppEnv>): void;
  close(): void;
}

/**
 * Sets up the gateway's observability over its registry, balancer, failure detector and
 * breakers: the {@link FrontDoor} metrics, the failure detector's Prometheus export
 * (`ballast_failure_detector_*{monitor="upstreams"}`), and the dashboard's sampler.
 */
export function gatewayObservability(gateway: ObservedGateway, options: ObservabilityOptions = {}): GatewayObservability {
  const frontDoor = new FrontDoor({ ...options, registry: gateway.registry });
  const detectorMetrics = failureDetectorMetrics(gateway.registry, { upstreams: gateway.monitor });
  const upstreams = (): UpstreamView[] => {
    const nodes = new Map(gateway.monitor.stats().nodes.map((n) => [n.id, n]));
    const circuits = gateway.circuits();
    return gateway.balancer.stats().endpoints.map((e) => ({
      id: e.id,
      balancer: e.state,
      circuit: circuits.get(e.id) ?? 'closed',
      detector: nodes.get(e.id)?.state ?? 'alive',
      phi: finitePhi(nodes.get(e.id)?.suspicion ?? 0),
      inFlight: e.inFlight,
    }));
  };
  const sources: DashboardSources = { frontDoor, upstreams };
  if (options.queue) sources.queue = options.queue;
  if (options.workers) sources.workers = options.workers;
  if (options.usage) sources.usage = options.usage;
  if (options.dimmer) sources.dimmer = options.dimmer;
  const sampler = new DashboardSampler(sources, options.dashboard);
  return {
    frontDoor,
    sampler,
    middleware: frontDoorMetrics(frontDoor),
    mount(ops) {
      ops.route('/', dashboardRoutes(sampler, options.usage));
      ops.get('/trace/:requestId', (c) => {
        const timeline = frontDoor.trace(c.req.param('requestId'));
        if (!timeline) {
          return errorResponse(
            404,
            'ERR_BALLAST_UNKNOWN_REQUEST',
            'no recent request has this id (only the most recent requests are kept)',
          );
        }
        return c.json(timeline);
      });
    },
    close() {
      sampler.close();
      detectorMetrics.close();
      frontDoor.close();
    },
  };
}

/** JSON has no Infinity: a silence too long for a double shows as the largest phi. */
function finitePhi(phi: number): number {
  return Number.isFinite(phi) ? phi : Number.MAX_VALUE;
}
