import { API_TIMING, annotate, serverTiming, TENANT_HEADER } from '@ballast/app-shared';
import type { Context, MiddlewareHandler } from 'hono';
import type { ApiEnv } from './options.ts';

/** When a request crossed each mark, `performance.now()`. */
interface Marks {
  admitted?: number;
  enqueued?: number;
}

const marks = new WeakMap<Context, Marks>();

/** Notes that the request crossed `mark` now (`admitted`: through admission control; `enqueued`: its job acknowledged). */
export function markStage(c: Context, mark: keyof Marks): void {
  let m = marks.get(c);
  if (!m) marks.set(c, (m = {}));
  m[mark] = performance.now();
}

/** Marks the request admitted once the middleware before it let it through. */
export const admitted = (): MiddlewareHandler<ApiEnv> =>
  async function admitted(c, next) {
    markStage(c, 'admitted');
    await next();
  };

/**
 * The API's stage timings, for the gateway's per-stage histograms and a request's
 * timeline: once the answer is ready, sets `Server-Timing` (`admission`, `enqueue`, for a
 * finished sync job the worker's `queue_wait` and `conversion`, and `api`, the whole time
 * here), the tenant header the gateway labels its metrics with, and `stages` on the
 * request's log line.
 */
export const stageTimings = (): MiddlewareHandler<ApiEnv> =>
  async function stageTimings(c, next) {
    await next();
    const { admitted, enqueued } = marks.get(c) ?? {};
    const started = c.var.startedAt;
    const stages: Record<string, number> = {};
    if (admitted !== undefined) stages.admission = round(admitted - started);
    if (admitted !== undefined && enqueued !== undefined) stages.enqueue = round(enqueued - admitted);
    const queued = Number(c.res.headers.get('x-queued-ms') ?? Number.NaN);
    const wall = Number(c.res.headers.get('x-wall-ms') ?? Number.NaN);
    if (Number.isFinite(queued)) stages.queue_wait = queued;
    if (Number.isFinite(wall)) stages.conversion = wall;
    c.res.headers.set('server-timing', serverTiming({ ...stages, [API_TIMING]: performance.now() - started }));
    c.res.headers.set(TENANT_HEADER, c.var.tenant);
    if (Object.keys(stages).length > 0) annotate(c, { stages });
  };

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
