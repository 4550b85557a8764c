/**
 * Graceful degradation in the API: one brownout dimmer per API server, driven by the
 * expected queue wait every work-creating request sees at admission, and what it does to
 * single images that opt in.
 */
import { BrownoutController, type BrownoutOptions } from '@ballast/backpressure';
import { BrownoutMetrics } from '@ballast/backpressure/prometheus';
import type { MiddlewareHandler } from 'hono';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Admission } from './admission.ts';
import type { ApiEnv } from './options.ts';
import { DEGRADATION_STAGES, type DegradationStage, EFFORT_FLOOR, type Format } from './renditions/plan.ts';

/** Response header naming the degradation stages applied to an answer (`effort`, `format`, `width`), comma-separated. */
export const DEGRADED_HEADER = 'x-ballast-degraded';
/** Response header with the dimmer θ the request was planned at. */
export const DIMMER_HEADER = 'x-ballast-dimmer';

/**
 * The API server's dimmer. The controlled variable is the queue wait a new job is
 * expected to see (what admission computes from the queue's depth and the workers'
 * recent conversion times), sampled at every work-creating request: it moves with the
 * load at once, where measured waits arrive only once a job starts. Its 95th percentile
 * over each period is held at the setpoint, by default a quarter of admission's
 * `maxExpectedWaitMs`, so the dimmer goes down well before admission sheds.
 */
export function apiDimmer(
  options: BrownoutOptions | false | undefined,
  name: string,
  maxExpectedWaitMs: number,
): BrownoutController | undefined {
  if (options === false) return undefined;
  return new BrownoutController({ name, setpointMs: Math.max(1, maxExpectedWaitMs / 4), ...options });
}

/** Records the queue wait admission expects for a new job, as a sample of the dimmer's controlled variable. */
export const sampleQueueWait = (admission: Admission, dimmer: BrownoutController | undefined): MiddlewareHandler<ApiEnv> =>
  async function sampleQueueWait(_c, next) {
    if (dimmer) dimmer.record(admission.expectedWaitMs(admission.stats().depth));
    await next();
  };

/** The API's degradation metrics. */
export interface DegradationMetrics {
  /** Renditions (or single images) each stage touched: `ballast_api_degradations_total{stage}`. */
  readonly degradations: Counter<'stage'>;
  /** Renditions asked for, by what became of them: `ballast_api_renditions_total{outcome}`. */
  readonly renditions: Counter<'outcome'>;
  /** Harvest of each rendition-set answer: `ballast_api_harvest_ratio`. */
  readonly harvest: Histogram;
}

/**
 * Registers the degradation metrics, and the dimmer's (`ballast_brownout_level{controller}`
 * and the rest of `@ballast/backpressure/prometheus`'s `BrownoutMetrics`).
 */
export function degradationMetrics(registry: Registry, dimmer: BrownoutController | undefined): DegradationMetrics & { close(): void } {
  const registers = [registry];
  const brownout = new BrownoutMetrics({ registry });
  if (dimmer) brownout.track(dimmer);
  const degradations = new Counter({
    name: 'ballast_api_degradations_total',
    help: 'Renditions or images degraded, by stage (effort, format, width)',
    labelNames: ['stage'],
    registers,
  });
  for (const stage of DEGRADATION_STAGES) degradations.inc({ stage }, 0);
  return {
    degradations,
    renditions: new Counter({
      name: 'ballast_api_renditions_total',
      help: 'Renditions asked for, by outcome (done, degraded, shed, deadline, too_large, failed, cancelled)',
      labelNames: ['outcome'],
      registers,
    }),
    harvest: new Histogram({
      name: 'ballast_api_harvest_ratio',
      help: 'Harvest of each rendition-set answer: renditions delivered ÷ asked',
      buckets: [0, 0.25, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 1],
      registers,
    }),
    close: () => brownout.close(),
  };
}

/**
 * `POST /v1/resize?degrade=true`: the client accepts a cheaper encoding under load. With
 * probability 1 − θ the effort is lowered to the format's floor (the only optional work of
 * a single image), and the answer says so in `x-ballast-degraded: effort`. Without the
 * parameter nothing changes.
 */
export const degradeSingle = (
  dimmer: BrownoutController | undefined,
  degradations: Counter<'stage'>,
  random: () => number = Math.random,
): MiddlewareHandler<ApiEnv> =>
  async function degradeSingle(c, next) {
    const request = c.var.request;
    if (!request.degrade || !dimmer) return next();
    const level = dimmer.level;
    const format = request.resize.format as Format;
    const effort = request.resize.effort as number;
    const lowered = effort > EFFORT_FLOOR[format] && level < 1 && random() >= level;
    if (lowered) {
      request.resize.effort = EFFORT_FLOOR[format];
      degradations.inc({ stage: 'effort' });
      c.var.fields.degraded = 'effort';
    }
    await next();
    c.res.headers.set(DIMMER_HEADER, level.toFixed(3));
    if (lowered) c.res.headers.set(DEGRADED_HEADER, 'effort');
  };

/** The `x-ballast-degraded` value for the stages a plan applied (undefined when none). */
export function degradedHeader(stages: Record<DegradationStage, number>): string | undefined {
  const applied = DEGRADATION_STAGES.filter((s) => stages[s] > 0);
  return applied.length > 0 ? applied.join(',') : undefined;
}
