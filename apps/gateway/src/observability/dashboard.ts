import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type AppEnv, errorResponse } from '@ballast/app-shared';
import { integer } from '@ballast/common';
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { FrontDoor, LiveWindow } from './front-door.ts';

/** One API server as the dashboard shows it. */
export interface UpstreamView {
  id: string;
  /** The balancer's view: `healthy`, `warming`, `ejected`, `down`, `draining`. */
  balancer: string;
  /** The circuit breaker's state: `closed`, `open`, `halfOpen`. */
  circuit: string;
  /** The failure detector's state: `alive`, `suspect`, `dead`. */
  detector: string;
  /** Phi: the failure detector's suspicion now. */
  phi: number;
  /** Requests in flight to it. */
  inFlight: number;
}

/** The queue as the dashboard shows it. */
export interface QueueView {
  /** Jobs waiting or in progress. */
  depth: number;
  /** Age of the oldest job not yet taken by a worker, ms (0 when none waits; absent when the queue cannot tell). */
  oldestAgeMs?: number;
}

/** Conversion slots of the workers the dashboard can see. */
export interface WorkerView {
  busy: number;
  slots: number;
}

/** One tenant's usage this hour (filled once usage metering reports it). */
export interface TenantUsageView {
  tenant: string;
  requests: number;
  cpuSeconds: number;
  bytes: number;
}

/**
 * Where the dashboard's figures come from. The front door and the upstreams are the
 * gateway's own; the queue, the workers and usage are given by whoever can see them
 * (the embedded system can; a gateway on its own shows those panels as not connected).
 */
export interface DashboardSources {
  frontDoor: FrontDoor;
  upstreams(): UpstreamView[];
  queue?: () => Promise<QueueView>;
  workers?: () => WorkerView;
  /** Per-tenant usage this hour: the slot the usage metering fills. */
  usage?: () => Promise<TenantUsageView[]>;
  /** The brownout dimmer θ: the share of optional work served (1 = full quality … 0 = most degraded). */
  dimmer?: () => number;
}

/** One sample of every figure, taken every `intervalMs`. */
export interface DashboardSample extends LiveWindow {
  /** When it was taken, epoch ms. */
  t: number;
  queueDepth: number | null;
  queueOldestAgeMs: number | null;
  /** Busy share of the workers' conversion slots, 0–1. */
  workerUtilisation: number | null;
  dimmer: number | null;
  upstreams: UpstreamView[];
}

/** Options of {@link DashboardSampler}. */
export interface DashboardOptions {
  /** Time between samples, ms. @default 1000 */
  intervalMs?: number;
  /** Samples kept (the charts' history). @default 300 */
  history?: number;
}

/**
 * Takes a {@link DashboardSample} every `intervalMs` (on an unref'd timer) and keeps the
 * last `history` of them; listeners get each sample as it is taken (server-sent events).
 */
export class DashboardSampler implements Disposable {
  readonly intervalMs: number;
  readonly history: number;
  readonly #sources: DashboardSources;
  readonly #samples: DashboardSample[] = [];
  readonly #listeners = new Set<(sample: DashboardSample) => void>();
  readonly #closers = new Set<() => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #taking = false;

  constructor(sources: DashboardSources, options: DashboardOptions = {}) {
    this.#sources = sources;
    this.intervalMs = integer('intervalMs', options.intervalMs ?? 1000, { min: 50, max: 60_000 });
    this.history = integer('history', options.history ?? 300, { min: 1, max: 100_000 });
    this.#timer = setInterval(() => void this.sample(), this.intervalMs);
    this.#timer.unref();
  }

  /** Takes a sample now (the timer does this every `intervalMs`). */
  async sample(): Promise<DashboardSample | undefined> {
    if (this.#taking || this.#timer === undefined) return undefined;
    this.#taking = true;
    try {
      const s = this.#sources;
      const queue = s.queue ? await s.queue().catch(() => undefined) : undefined;
      const workers = s.workers?.();
      const sample: DashboardSample = {
        t: Date.now(),
        ...s.frontDoor.live(),
        queueDepth: queue?.depth ?? null,
        queueOldestAgeMs: queue?.oldestAgeMs ?? null,
        workerUtilisation: workers && workers.slots > 0 ? workers.busy / workers.slots : null,
        dimmer: s.dimmer?.() ?? null,
        upstreams: s.upstreams(),
      };
      this.#samples.push(sample);
      if (this.#samples.length > this.history) this.#samples.shift();
      for (const listener of this.#listeners) listener(sample);
      return sample;
    } finally {
      this.#taking = false;
    }
  }

  /** Samples taken after `since` (epoch ms), oldest first. */
  samples(since = 0): DashboardSample[] {
    return this.#samples.filter((s) => s.t > since);
  }

  /** Calls `listener` with every new sample, and `onClose` when the sampler closes; returns the unsubscribe function. */
  subscribe(listener: (sample: DashboardSample) => void, onClose?: () => void): () => void {
    this.#listeners.add(listener);
    if (onClose) this.#closers.add(onClose);
    return () => {
      this.#listeners.delete(listener);
      if (onClose) this.#closers.delete(onClose);
    };
  }

  /** Stops sampling and drops the listeners. Idempotent. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
    for (const onClose of [...this.#closers]) onClose();
    this.#closers.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

const require = createRequire(import.meta.url);
const assetDir = new URL('../../dashboard/', import.meta.url);

/** The page's files, read once: ours, and uPlot's from its npm package. */
function loadAssets(): Record<string, { body: string; type: string }> {
  const own = (name: string): string => readFileSync(new URL(name, assetDir), 'utf8');
  return {
    'index.html': { body: own('index.html'), type: 'text/html; charset=utf-8' },
    'dashboard.js': { body: own('dashboard.js'), type: 'text/javascript; charset=utf-8' },
    'dashboard.css': { body: own('dashboard.css'), type: 'text/css; charset=utf-8' },
    'uplot.js': { body: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'), type: 'text/javascript; charset=utf-8' },
    'uplot.css': { body: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'), type: 'text/css; charset=utf-8' },
  };
}

/**
 * The dashboard's routes, for the gateway's operational listener:
 * - `GET /dashboard`: the page (uPlot charts; no build step);
 * - `GET /dashboard/data?since=<epoch ms>`: `{ intervalMs, samples }`, the samples taken after `since`;
 * - `GET /dashboard/events`: server-sent events, one `sample` event per sample;
 * - `GET /dashboard/assets/<file>`: the page's script and styles.
 */
export function dashboardRoutes(sampler: DashboardSampler, usage?: () => Promise<TenantUsageView[]>): Hono<AppEnv> {
  const assets = loadAssets();
  const app = new Hono<AppEnv>();
  const asset = (name: string) => {
    const file = assets[name];
    if (!file) return errorResponse(404, 'ERR_BALLAST_NOT_FOUND', `no dashboard asset ${JSON.stringify(name)}`);
    return new Response(file.body, { headers: { 'content-type': file.type, 'cache-control': 'no-cache' } });
  };
  app.get('/dashboard', () => asset('index.html'));
  app.get('/dashboard/assets/:name', (c) => asset(c.req.param('name')));
  app.get('/dashboard/data', async (c) => {
    const since = Number(c.req.query('since') ?? 0);
    const samples = sampler.samples(Number.isFinite(since) ? since : 0);
    const tenants = usage ? await usage().catch(() => null) : null;
    return c.json({ intervalMs: sampler.intervalMs, now: Date.now(), samples, usage: tenants }, 200, { 'cache-control': 'no-store' });
  });
  app.get('/dashboard/events', (c) =>
    streamSSE(c, async (stream) => {
      let closed = false;
      let end = (): void => {};
      const ended = new Promise<void>((resolve) => {
        end = () => {
          closed = true;
          resolve();
        };
      });
      const unsubscribe = sampler.subscribe((sample) => {
        if (!closed) void stream.writeSSE({ event: 'sample', data: JSON.stringify(sample) });
      }, end);
      stream.onAbort(end);
      await ended;
      unsubscribe();
    }),
  );
  return app;
}
