/**
 * Graceful degradation in the API: one brownout dimmer per API server, driven by the
 * response times of its requests against their deadlines (sheds counted as misses), and
 * what it does to single images that opt in.
 */

import { SHED_HEADER } from '@ballast/app-shared';
import { BrownoutController, type BrownoutOptions } from '@ballast/backpressure';
import { BrownoutMetrics } from '@ballast/backpressure/prometheus';
import type { MiddlewareHandler } from 'hono';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Admission } from './admission.ts';
import type { ApiEnv } from './options.ts';
import {
  DEGRADATION_STAGES,
  type DegradationStage,
  EFFORT_FLOOR,
  type Format,
  planRenditions,
  type Rendition,
  type RenditionPlan,
} from './renditions/plan.ts';

/** Response header naming the degradation stages applied to an answer (`effort`, `format`, `width`), comma-separated. */
export const DEGRADED_HEADER = 'x-ballast-degraded';
/** Response header with the dimmer θ the request was planned at. */
export const DIMMER_HEADER = 'x-ballast-dimmer';

/**
 * The API server's dimmer. Its samples are response times as a share of the deadline,
 * in per mille — the measured response time, as in the brownout paper, made comparable
 * between requests with different deadlines: one per rendition job of a sync set (when
 * its result came, or the deadline), one per sync single image, and a deadline miss for
 * each job a request would have enqueued but did not — shed (503 with `x-ballast-shed`),
 * or cut from its set to fit the queue's room (`fitToRoom`) — so the dimmer hears of an
 * overload that admission answers alone. Its 95th percentile over each period is held at
 * the setpoint, 600 ‰ by default (see {@link DEFAULT_SETPOINT}). Async requests are not
 * samples.
 */
export function apiDimmer(options: BrownoutOptions | false | undefined, name: string): BrownoutController | undefined {
  if (options === false) return undefined;
  return new BrownoutController({
    name,
    setpointMs: DEFAULT_SETPOINT,
    pole: DEFAULT_POLE,
    forgetting: DEFAULT_FORGETTING,
    whenIdle: 'raise',
    ...options,
  });
}

/**
 * The API dimmer's default setpoint: 600 ‰ of a request's deadline — 95 % of the work
 * answers within 60 % of its deadline. The rest of the deadline is the margin for the
 * queue's bursts (Poisson arrivals, conversions of 10–80 ms): admission sheds a set whose
 * expected queue wait exceeds the deadline less one conversion, and with the 95th
 * percentile held at 800 ‰ the bursts above it reached that and were shed. The margin
 * costs little harvest, since the first stage of degradation, lower encoder effort,
 * saves much and drops nothing.
 */
export const DEFAULT_SETPOINT = 600;
/**
 * The API dimmer's default pole: the controller's own default, 0.9. A large step of load
 * is not what sets it — then the deadline misses (2000 ‰) saturate the error and θ falls
 * by a tenth or so of itself each period whatever the pole — but the noise of a period's
 * 95th percentile near the setpoint (each of three API servers hears a third of the
 * traffic), which a faster pole chases: at 0.8, θ wandered more than ±0.1 around where it
 * settles in the step-response tests long after the step.
 */
export const DEFAULT_POLE = 0.9;
/**
 * The API dimmer's default forgetting factor: a memory of about three periods, so the
 * gain follows when an overload ends — a deadline miss weighs 2000 ‰, and the estimate
 * of α it leaves behind would otherwise hold θ down for many periods — without following
 * each period's noise.
 */
export const DEFAULT_FORGETTING = 0.7;

/**
 * The sample of a deadline missed, ‰: twice the deadline. How late the work would have
 * been is unknown (it was cancelled, or never admitted); counting it as just the deadline
 * would cap the error the controller sees under overload, and with it how fast it dims.
 */
const MISSED = 2000;

/** Records a deadline missed (a job cancelled at its deadline, a shed request's job, a rendition cut to fit). */
export function recordMiss(dimmer: BrownoutController | undefined): void {
  dimmer?.record(MISSED);
}

/**
 * Samples the dimmer once a request is answered: a shed (503 with `x-ballast-shed`) as a
 * deadline missed by each job the request would have enqueued; with `latency`, an
 * admitted sync request's response time (‰ of its deadline), unless the client went away
 * or the answer is a client error. Placed right before admission.
 */
export const sampleResponses = (dimmer: BrownoutController | undefined, latency: boolean): MiddlewareHandler<ApiEnv> =>
  async function sampleResponses(c, next) {
    await next();
    if (!dimmer) return;
    const { mode, deadlineMs, jobs } = c.var.request;
    const status = c.res.status;
    if (status === 503 && c.res.headers.has(SHED_HEADER)) {
      for (let i = 0; i < (jobs ?? 1); i++) dimmer.record(MISSED);
    } else if (latency && mode === 'sync' && status !== 499 && (status < 400 || status >= 500)) {
      dimmer.record(status === 504 ? MISSED : (1000 * (performance.now() - c.var.startedAt)) / deadlineMs);
    }
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

/** How far below θ {@link fitToRoom} looks for a plan that fits, per step. */
const FIT_STEP = 0.05;

/** A rendition set's plan and the level it was planned at. */
export interface PlannedSet {
  plan: RenditionPlan;
  level: number;
}

/**
 * Degrade before shedding: a rendition set whose plan at the dimmer's level θ would take
 * the queue past the dimmer's setpoint is planned lower — the highest level below θ, in
 * steps of 0.05, whose plan fits — down to the one rendition never dropped. `room` is
 * how many jobs admission would take (what can start within the deadline), `within` how
 * many of them would answer within the setpoint (‰ of the deadline; see
 * {@link roomWithinSetpoint}): the set is fitted to `within` (at least one job), so the
 * queue is held at the dimmer's target and the margin up to admission's limit is left for
 * the bursts of arrivals — fitting to admission's own limit left the queue at the edge, and
 * the next set to arrive found no room and was shed. The dimmer lags a sudden overload by
 * a control period or more; meanwhile this answers with fewer renditions instead of 503s.
 * Each rendition cut is a deadline missed for the dimmer, as it is for the client (it is
 * not in the answer), so the dimmer hears of the overload as loudly as if they had been
 * shed, and dims as fast. A set that fits keeps its plan. When the queue has no room for
 * even one job, the set is planned at its least (its misses recorded the same way):
 * admission sheds it, and a probe admitted anyway adds one job to the queue, not the whole
 * plan. Called by `Admission.admitFitting`, between its reading of the queue and its
 * decision.
 */
export function fitToRoom(
  asked: readonly Rendition[],
  planned: PlannedSet,
  room: number,
  within: number,
  dimmer: BrownoutController,
  random: () => number,
): PlannedSet {
  const target = room < 1 ? 0 : Math.max(1, Math.min(room, within));
  if (planned.plan.planned <= target) return planned;
  let fitted: PlannedSet = target < 1 ? { plan: planRenditions(asked, 0, random), level: 0 } : planned;
  while (fitted.plan.planned > target && fitted.level > 0) {
    const level = Math.max(0, fitted.level - FIT_STEP);
    fitted = { plan: planRenditions(asked, level, random), level };
  }
  for (let k = fitted.plan.planned; k < planned.plan.planned; k++) recordMiss(dimmer);
  return fitted;
}

/**
 * Of the `room` jobs admission would take now, how many would answer within the dimmer's
 * setpoint: the k-th waits behind the queue ahead and the k − 1 before it
 * (`Admission.expectedWaitMs`), then takes one conversion, and its predicted response time
 * is held to `setpoint` ‰ of `deadlineMs`. From the same readings admission just decided on.
 */
export function roomWithinSetpoint(admission: Admission, room: number, deadlineMs: number, setpoint: number): number {
  const { depth, serviceMs } = admission.stats();
  const targetMs = (setpoint / 1000) * deadlineMs;
  let k = 0;
  while (k < room && admission.expectedWaitMs(depth + k, serviceMs) + serviceMs <= targetMs) k++;
  return k;
}
