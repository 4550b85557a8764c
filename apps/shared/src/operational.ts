import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import { metricsHandler } from './metrics.ts';
import { type AppEnv, notFound } from './middleware.ts';

/** `/healthz`: whether the process is alive and wants traffic (false while draining). */
export interface HealthState {
  ok: boolean;
  [detail: string]: unknown;
}

/** `/readyz`: whether the service can do its work now (its queue reachable, an upstream up). */
export interface ReadyState {
  ready: boolean;
  [detail: string]: unknown;
}

/** Options of {@link operationalApp}. */
export interface OperationalOptions {
  /** Service name, in the health answers. */
  service: string;
  /** The registry `/metrics` serves. */
  registry: Registry;
  /** @default always `{ ok: true }` */
  health?: () => HealthState;
  /** @default always `{ ready: true }` */
  ready?: () => ReadyState | Promise<ReadyState>;
}

/**
 * Adds `/healthz` and `/readyz` to `app`: 200 with the state when ok/ready, 503
 * otherwise. A service's public listener carries these too when something probes it
 * there (the gateway probes each API server on the port it sends requests to).
 */
export function healthRoutes(app: Hono<AppEnv>, options: Pick<OperationalOptions, 'service' | 'health' | 'ready'>): void {
  const health = options.health ?? (() => ({ ok: true }));
  const ready = options.ready ?? (() => ({ ready: true }));
  app.get('/healthz', (c) => {
    const state = health();
    return c.json({ service: options.service, ...state }, state.ok ? 200 : 503);
  });
  app.get('/readyz', async (c) => {
    const state = await ready();
    return c.json({ service: options.service, ...state }, state.ready ? 200 : 503);
  });
}

/**
 * The operational listener's app: `/healthz`, `/readyz` and Prometheus `/metrics`, and
 * nothing else until the service adds its admin routes (`app.get('/gateway/stats', …)`,
 * a dashboard with `app.route('/dashboard', …)`) before it starts listening. Serve it
 * with `listen(app.fetch, { port })` on a port the public does not reach.
 */
export function operationalApp(options: OperationalOptions): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  healthRoutes(app, options);
  app.get('/metrics', metricsHandler(options.registry));
  app.notFound(notFound);
  return app;
}
