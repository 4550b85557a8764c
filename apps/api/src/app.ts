import {
  type AppEnv,
  anonymous,
  BodyBudget,
  createLogger,
  errorHandler,
  forApp,
  healthRoutes,
  measure,
  notFound,
  type OperationalOptions,
  operationalApp,
  requestContext,
} from '@ballast/app-shared';
import type { BrownoutController } from '@ballast/backpressure';
import { Hono, type MiddlewareHandler } from 'hono';
import { Registry } from 'prom-client';
import { Admission } from './admission.ts';
import { apiDimmer, degradationMetrics, degradeSingle, sampleResponses } from './brownout.ts';
import { enqueueAcrossFailover } from './enqueue.ts';
import { apiErrors } from './errors.ts';
import { FairShare, fairShareGate, fairShareMetrics } from './fair-share.ts';
import { admit, cancelJob, jobOutcome, jobResult, readImage, resize } from './handlers.ts';
import { apiMetrics } from './metrics.ts';
import { type ApiEnv, type ApiOptions, resolveApiOptions } from './options.ts';
import { validateResize } from './params.ts';
import { queueMetrics } from './queue-metrics.ts';
import { renditionRoutes } from './renditions/routes.ts';
import { usageRoutes } from './routes/usage.ts';
import { tenantJobs } from './tenancy.ts';
import { admitted, stageTimings } from './timing.ts';

/** A built API: its apps and what it owns. */
export interface Api extends AsyncDisposable {
  /** The public app: `POST /v1/resize`, `GET`/`DELETE /v1/jobs/:id`, and `/healthz`, `/readyz` for the gateway's probes. */
  readonly app: Hono<ApiEnv>;
  /** The operational app: `/healthz`, `/readyz`, `/metrics`; serve it on a port the public does not reach. */
  readonly ops: Hono<AppEnv>;
  readonly registry: Registry;
  readonly admission: Admission;
  /** The brownout dimmer (undefined with `brownout: false`). */
  readonly dimmer: BrownoutController | undefined;
  /**
   * Starts a graceful shutdown's first step: `/healthz` and `/readyz` answer 503, so a
   * gateway's health checks take this server out of rotation, while requests still sent
   * here are served, each answer closing its connection. Close the server once the
   * gateway has stopped sending (a few health intervals): closing idle keep-alive
   * connections under a gateway still using them fails the requests written onto them.
   */
  drain(): void;
  /** True once {@link Api.drain} was called. */
  readonly draining: boolean;
  /** Per-client fair share of the workers (undefined with `fairShare: false`). */
  readonly fairShare: FairShare | undefined;
  /** Stops admitting; does not close the queue (its owner does). */
  close(): Promise<void>;
}

/**
 * The API service, built as one Hono middleware chain: request context (id, logger) →
 * metrics → drain → errors → authentication → for `POST /v1/resize`: usage report →
 * parameters → admission (shed before the body is read) → the image, within its limits
 * and the server's body budget → enqueue, then 202 (async) or the result (sync).
 */
export function createApi(options: ApiOptions): Api {
  const o = resolveApiOptions(options);
  const queue = options.queue;
  const log = (options.logger ?? createLogger()).child({ service: o.name });
  const registry = options.registry ?? new Registry();
  const admission = new Admission(queue, options);
  const enqueue = enqueueAcrossFailover(queue, o.enqueueRetryMs);
  const metrics = apiMetrics(registry, queue, admission);
  queueMetrics(registry, queue);
  const bodies = new BodyBudget(o.bodyBudgetBytes);
  const share = fairShareOf(options);
  const stopShareMetrics = share ? fairShareMetrics(registry, share) : () => {};
  const dimmer = apiDimmer(options.brownout, o.name);
  const degradation = degradationMetrics(registry, dimmer);
  const random = options.random ?? Math.random;
  let draining = false;
  const probes: Pick<OperationalOptions, 'service' | 'health' | 'ready'> = {
    service: o.name,
    health: () => ({ ok: !draining, draining }),
    ready: () => {
      const identity = options.identity?.health();
      if (draining) return { ready: false, queue: queue.kind, draining };
      return queue.ping().then(
        () => ({ ready: identity?.loaded !== false, queue: queue.kind, ...(identity && { identity }) }),
        () => ({ ready: false, queue: queue.kind }),
      );
    },
  };

  const app = new Hono<ApiEnv>();
  app.use(requestContext<ApiEnv>(log));
  app.use(measure(metrics.requests, (c) => ({ mode: String(c.var.fields.mode ?? 'none') })));
  app.use(closeWhile(() => draining));
  app.onError(errorHandler(apiErrors(metrics.shed)));
  app.notFound(notFound);
  healthRoutes(app as unknown as Hono<AppEnv>, probes);
  app.use('/v1/*', stageTimings());
  app.use('/v1/*', forApp<ApiEnv>(options.authenticate ?? anonymous()));
  app.post(
    '/v1/resize',
    jobOutcome(options.onUsage),
    validateResize(o.defaultDeadlineMs, o.maxDeadlineMs),
    ...(options.quotas ? [tenantJobs(options.quotas, queue)] : []),
    ...(share ? [fairShareGate(share, queue)] : []),
    sampleResponses(dimmer, true),
    admit(admission),
    admitted(),
    degradeSingle(dimmer, degradation.degradations, random),
    readImage(o.body, bodies, o.inputFormats),
    resize(queue, enqueue),
  );
  renditionRoutes(app, {
    queue,
    enqueue,
    admission,
    dimmer,
    metrics: degradation,
    shed: metrics.shed,
    options: o,
    bodies,
    quotas: options.quotas,
    fairShare: share,
    onUsage: options.onUsage,
    random,
  });
  app.get('/v1/jobs/:id', jobResult(queue));
  app.delete('/v1/jobs/:id', cancelJob(queue));
  if (options.usage) usageRoutes(app, options.usage);
  options.routes?.(app);

  const ops = operationalApp({ ...probes, registry });
  const close = async (): Promise<void> => {
    admission[Symbol.dispose]();
    enqueue[Symbol.dispose]();
    stopShareMetrics();
    if (share && share !== options.fairShare) share.close(); // made here: given ones are their owner's to close
    dimmer?.close();
    degradation.close();
  };
  return {
    app,
    ops,
    registry,
    admission,
    fairShare: share,
    dimmer,
    drain: () => {
      draining = true;
    },
    get draining() {
      return draining;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The API's fair share: the one given (shared by several API servers in one process), one made from its options, or none. */
function fairShareOf(options: ApiOptions): FairShare | undefined {
  const given = options.fairShare;
  if (given === false) return undefined;
  if (given instanceof FairShare) return given;
  return new FairShare({ workerSlots: options.workerSlots, ...given });
}

/** While `draining()`, every answer closes its connection. */
const closeWhile = (draining: () => boolean): MiddlewareHandler<ApiEnv> =>
  async function closeWhileDraining(c, next) {
    await next();
    if (draining()) c.res.headers.set('connection', 'close');
  };
