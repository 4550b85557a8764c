/**
 * `POST /v1/renditions`, `GET` and `DELETE /v1/renditions/:id`: rendition sets — one
 * source image, several outputs, each its own job — answered with a manifest whose
 * entries link to the images, degraded under load by the server's brownout dimmer.
 */
import { type JobQueue, type JobState, parseResizeParams, QueueFullError } from '@ballast/app-queue';
import { answeredStatus, type BodyBudget, clientSignal, errorResponse, HttpError, retryAfter, SHED_HEADER } from '@ballast/app-shared';
import type { BrownoutController } from '@ballast/backpressure';
import { linkSignal } from '@ballast/common';
import type { Context, Handler, Hono, MiddlewareHandler } from 'hono';
import type { Counter } from 'prom-client';
import type { Admission } from '../admission.ts';
import {
  DEGRADED_HEADER,
  type DegradationMetrics,
  DIMMER_HEADER,
  degradedHeader,
  fitToRoom,
  recordMiss,
  roomWithinSetpoint,
  sampleResponses,
} from '../brownout.ts';
import type { FailoverEnqueue } from '../enqueue.ts';
import { type FairShare, fairShareSets } from '../fair-share.ts';
import { readImage } from '../handlers.ts';
import type { ApiEnv, ApiUsage, ResolvedApiOptions } from '../options.ts';
import { checkImageContentType } from '../params.ts';
import { statusForFailure } from '../results.ts';
import { holdUntilDone } from '../tenancy.ts';
import type { JobSlot, TenantQuotas } from '../tenant-quota.ts';
import { admitted, markStage } from '../timing.ts';
import { buildManifest, type Manifest } from './manifest.ts';
import { parseRenditionQuery, type RenditionRequest } from './params.ts';
import { type PlannedRendition, planRenditions, type RenditionPlan, renditionCost } from './plan.ts';
import { type EntryState, encodeSetId, newSetUuid, type RenditionSet, readSetId, renditionJobId } from './set-id.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** A validated `POST /v1/renditions` request. */
    renditionRequest: RenditionRequest;
    /** Its plan at the dimmer's level, and the concurrent-job slots held for it. */
    renditionPlan: { plan: RenditionPlan; level: number; slots: JobSlot[] };
  }
}

/** What the rendition routes need from the API. */
export interface RenditionRoutes {
  queue: JobQueue;
  /** Enqueues riding out a failover of the queue (the single-image route's); the queue's own `enqueue` without it. */
  enqueue?: FailoverEnqueue;
  admission: Admission;
  dimmer: BrownoutController | undefined;
  metrics: DegradationMetrics;
  shed: Counter<'reason'>;
  options: ResolvedApiOptions;
  bodies: BodyBudget;
  quotas?: TenantQuotas;
  /** Per-client fair share of the workers (see fair-share.ts). */
  fairShare?: FairShare;
  onUsage?: (usage: ApiUsage) => void;
  random: () => number;
}

/** Adds the rendition-set routes to the API (behind its authentication). */
export function renditionRoutes(app: Hono<ApiEnv>, deps: RenditionRoutes): void {
  const o = deps.options;
  app.post(
    '/v1/renditions',
    validateRenditions(o.defaultDeadlineMs, o.maxDeadlineMs),
    planSet(deps),
    tenantSlots(deps.quotas),
    ...(deps.fairShare ? [fairShareSets(deps.fairShare, deps.queue)] : []),
    sampleResponses(deps.dimmer, false),
    admitSet(deps),
    admitted(),
    readImage(o.body, deps.bodies, o.inputFormats),
    renditionSet(deps),
  );
  app.get('/v1/renditions/:id', renditionManifest(deps.queue));
  app.delete('/v1/renditions/:id', cancelRenditions(deps.queue));
}

const validateRenditions = (defaultDeadlineMs: number, maxDeadlineMs: number): MiddlewareHandler<ApiEnv> =>
  async function validateRenditions(c, next) {
    const request = parseRenditionQuery(c.req.queries(), defaultDeadlineMs, maxDeadlineMs);
    checkImageContentType(c.req.header('content-type'));
    c.set('renditionRequest', request);
    // Admission and the body reader read these.
    c.set('request', { resize: {}, mode: request.mode, deadlineMs: request.deadlineMs });
    c.set('usage', {});
    c.var.fields.mode = request.mode;
    await next();
  };

/**
 * Plans the set at the dimmer's level (see plan.ts). A client that asked for all or
 * nothing (`partial=false`) while the dimmer is below what lowering efforts reaches is
 * answered 503 + `Retry-After` (`x-ballast-shed: brownout`) at once.
 */
const planSet = (deps: RenditionRoutes): MiddlewareHandler<ApiEnv> =>
  async function planSet(c, next) {
    const request = c.var.renditionRequest;
    const level = deps.dimmer?.level ?? 1;
    const plan = planRenditions(request.renditions, level, deps.random, request.partial);
    if (plan.shortfallMs > 0) {
      deps.shed.inc({ reason: 'brownout' });
      const wait = retryAfter(2 * (deps.dimmer?.periodMs ?? 1000));
      throw new HttpError(
        503,
        'ERR_BALLAST_OVERLOADED',
        `the server is degrading rendition sets (dimmer ${level.toFixed(2)}); partial=false asks for every rendition or none: retry after ${wait} s, or accept a partial answer`,
        { 'retry-after': wait, [SHED_HEADER]: 'brownout' },
      );
    }
    const planned = { plan, level, slots: [] };
    c.set('renditionPlan', planned);
    c.var.request.jobs = plan.planned;
    await next();
    // The plan admission settled on (admitSet may have planned it lower).
    c.res.headers.set(DIMMER_HEADER, planned.level.toFixed(3));
    const degraded = degradedHeader(planned.plan.stages);
    if (degraded) c.res.headers.set(DEGRADED_HEADER, degraded);
  };

/**
 * Admission for a set, which degrades before it sheds: with brownout, a set whose plan
 * has more jobs than the queue has room for is planned lower first (`fitToRoom`), in the
 * same step as admission's decision. The degradations of the plan admitted are counted.
 */
const admitSet = (deps: RenditionRoutes): MiddlewareHandler<ApiEnv> =>
  async function admitSet(c, next) {
    const request = c.var.renditionRequest;
    const planned = c.var.renditionPlan;
    const { dimmer, admission } = deps;
    const permit = await admission.admitFitting(request.deadlineMs, (room) => {
      if (dimmer && request.partial) {
        const within = roomWithinSetpoint(admission, room, request.deadlineMs, dimmer.setpointMs);
        Object.assign(planned, fitToRoom(request.renditions, planned, room, within, dimmer, deps.random));
      }
      c.var.request.jobs = planned.plan.planned;
      return planned.plan.planned;
    });
    for (const [stage, count] of Object.entries(planned.plan.stages)) if (count > 0) deps.metrics.degradations.inc({ stage }, count);
    try {
      await next();
    } finally {
      permit.release({ ok: answeredStatus(c) < 500 });
    }
  };

/** The tenant's concurrent-job quota, one slot per rendition to make: 429 when they are not all free. */
const tenantSlots = (quotas: TenantQuotas | undefined): MiddlewareHandler<ApiEnv> =>
  async function tenantSlots(c, next) {
    const quota = c.get('caller')?.quota;
    if (!quotas || quota === undefined) return next();
    const { plan, slots } = c.var.renditionPlan;
    const holdMs = c.var.renditionRequest.deadlineMs + 5000;
    for (let i = 0; i < plan.planned; i++) {
      const slot = await quotas.acquireJob(c.var.tenant, quota, holdMs);
      if (!slot) {
        for (const held of slots.splice(0)) held.release();
        throw new HttpError(
          429,
          'ERR_BALLAST_TOO_MANY_JOBS',
          `tenant ${c.var.tenant} has too few of its ${quota.concurrentJobs} concurrent jobs free for ${plan.planned} renditions; retry when jobs finish, or ask for fewer`,
          { 'retry-after': '1' },
        );
      }
      slots.push(slot);
    }
    try {
      await next();
    } finally {
      // Sync answers are final; an async set's slots were handed to its jobs.
      for (const slot of slots.splice(0)) slot.release();
    }
  };

/** Enqueues the set's jobs, then answers 202 with its manifest (async) or waits for them until the deadline (sync). */
const renditionSet = (deps: RenditionRoutes): Handler<ApiEnv> =>
  async function renditionSet(c) {
    const request = c.var.renditionRequest;
    const deadlineAt = Date.now() + request.deadlineMs;
    const set = await enqueueSet(c, deps, deadlineAt);
    markStage(c, 'enqueued');
    c.var.fields.setId = set.id;
    if (request.mode === 'async') {
      holdSlots(c, set, deps.queue, deadlineAt);
      const manifest = buildManifest(
        set,
        set.entries.map((_, i) => ({ id: renditionJobId(set.tenant, set.uuid, i), status: 'pending' as const })),
        false,
      );
      countOutcomes(deps.metrics, manifest);
      reportUsage(c, deps, set, [], 202);
      c.header('location', `/v1/renditions/${set.id}`);
      return c.json(manifest, 202);
    }
    const states = await waitForSet(c, set, deadlineAt, deps);
    if (!states) return new Response(null, { status: 499 });
    return syncAnswer(c, deps, set, states);
  };

/**
 * Every planned rendition as its own job; those the full queue refuses are `shed`. A sync
 * set is enqueued cheapest first: its client takes what is ready at the deadline, and
 * shortest-first delivers the most renditions by then (a costly AVIF that cannot finish
 * in time no longer holds back the cheap ones behind it). An async set is enqueued
 * costliest first: the longest conversions start first, so the whole set is done soonest
 * on several workers.
 */
async function enqueueSet(c: Context<ApiEnv>, deps: RenditionRoutes, deadlineAt: number): Promise<RenditionSet> {
  const { renditions } = c.var.renditionPlan.plan;
  const { common, mode } = c.var.renditionRequest;
  const uuid = newSetUuid();
  const tenant = c.var.tenant;
  const cost = (i: number): number => {
    const r = renditions[i] as PlannedRendition;
    return r.dropped === undefined ? renditionCost(r.width, r.format, r.plannedEffort) : -1;
  };
  const order = renditions.map((_, i) => i).sort(mode === 'sync' ? (a, b) => cost(a) - cost(b) : (a, b) => cost(b) - cost(a));
  const enqueued = new Array<Promise<unknown>>(renditions.length);
  for (const i of order) {
    const r = renditions[i] as PlannedRendition;
    if (r.dropped !== undefined) {
      enqueued[i] = Promise.resolve(undefined);
      continue;
    }
    const resize = parseResizeParams({ ...common, width: r.width, format: r.format, effort: r.plannedEffort });
    enqueued[i] = (deps.enqueue ?? deps.queue).enqueue({
      id: renditionJobId(tenant, uuid, i),
      data: c.var.image,
      params: { resize, tenant, requestId: c.var.requestId, rendition: { set: uuid, index: i } },
      deadlineAt,
      resultTtlMs: mode === 'sync' ? deps.options.renditionResultTtlMs : undefined,
      attended: mode === 'sync',
    });
  }
  const results = await Promise.allSettled(enqueued);
  const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  const fatal = refused.find((e) => !(e instanceof QueueFullError));
  const states = results.map((r, i): EntryState => {
    const dropped = renditions[i]?.dropped;
    if (dropped !== undefined) return dropped === 'format' ? 'dropped-format' : 'dropped-width';
    return r.status === 'fulfilled' ? 'queued' : 'shed';
  });
  if (fatal !== undefined || !states.includes('queued')) {
    // Nothing half-done is left behind: the jobs enqueued are taken back.
    states.forEach((s, i) => {
      if (s === 'queued') deps.queue.cancel(renditionJobId(tenant, uuid, i)).catch(() => {});
    });
    throw fatal ?? refused[0];
  }
  return encodeSetId(
    tenant,
    uuid,
    renditions.map((r, i) => ({
      width: r.width,
      format: r.format,
      effort: r.effort,
      plannedEffort: r.plannedEffort,
      state: states[i] as EntryState,
    })),
  );
}

/** An async set's slots go to its jobs: each is freed when its job reaches a final state (or its deadline passes). */
function holdSlots(c: Context<ApiEnv>, set: RenditionSet, queue: JobQueue, deadlineAt: number): void {
  const slots = c.var.renditionPlan.slots.splice(0);
  set.entries.forEach((e, i) => {
    if (e.state !== 'queued') return;
    const slot = slots.pop();
    if (slot) holdUntilDone(queue, renditionJobId(set.tenant, set.uuid, i), slot, deadlineAt);
  });
  for (const slot of slots) slot.release();
}

/**
 * Waits for every job of a sync set until the deadline; the jobs not finished by then are
 * cancelled (a job already running finishes, and its link stays valid). Undefined when the
 * client went away: every unfinished job is cancelled. Each job's response time (its
 * result, or the deadline) is a sample of the dimmer, as a share of the deadline (‰).
 */
async function waitForSet(
  c: Context<ApiEnv>,
  set: RenditionSet,
  deadlineAt: number,
  deps: RenditionRoutes,
): Promise<(JobState | undefined)[] | undefined> {
  const client = clientSignal(c);
  const linked = linkSignal([client], deadlineAt - Date.now());
  const ids = set.entries.map((e, i) => (e.state === 'queued' ? renditionJobId(set.tenant, set.uuid, i) : undefined));
  const sample = (): void => deps.dimmer?.record((1000 * (performance.now() - c.var.startedAt)) / c.var.renditionRequest.deadlineMs);
  try {
    const states: (JobState | undefined)[] = await Promise.all(
      ids.map((id) =>
        id === undefined
          ? undefined
          : deps.queue.wait(id, linked.signal).then(
              (state) => {
                sample();
                return state;
              },
              () => undefined,
            ),
      ),
    );
    if (client.aborted) {
      for (const id of ids) if (id !== undefined) deps.queue.cancel(id).catch(() => {});
      c.var.log.info({ setId: set.id }, 'client went away; rendition jobs cancelled');
      return undefined;
    }
    ids.forEach((id, i) => {
      if (id === undefined || states[i] !== undefined) return;
      deps.queue.cancel(id).catch(() => {});
      states[i] = { id, status: 'pending' };
      recordMiss(deps.dimmer);
    });
    return states;
  } finally {
    linked.dispose();
  }
}

/**
 * The sync answer: 200 with the manifest and `x-ballast-harvest`; when nothing (or, with
 * `partial=false`, not everything) could be delivered, the error that says why: the
 * input's fault first (413, 422, …), else 503 + `Retry-After` (`x-ballast-shed:
 * incomplete`) for an incomplete all-or-nothing set, 504 for an empty one.
 */
function syncAnswer(c: Context<ApiEnv>, deps: RenditionRoutes, set: RenditionSet, states: readonly (JobState | undefined)[]): Response {
  const manifest = buildManifest(set, states, true);
  countOutcomes(deps.metrics, manifest);
  const complete = manifest.delivered === manifest.asked;
  const enough = manifest.delivered > 0 && (complete || c.var.renditionRequest.partial);
  deps.metrics.harvest.observe(enough ? manifest.harvest : 0);
  const error = enough ? undefined : setError(manifest, c.var.renditionRequest, deps.shed);
  reportUsage(c, deps, set, states, error?.status ?? 200);
  if (error) throw error;
  c.header('x-ballast-harvest', String(manifest.harvest));
  return c.json(manifest, 200);
}

function setError(manifest: Manifest, request: RenditionRequest, shed: Counter<'reason'>): HttpError {
  const input = manifest.renditions.find((r) => r.reason === 'too_large' || r.reason === 'failed');
  if (input?.error) return new HttpError(statusForFailure(input.error.code), input.error.code, input.error.message);
  if (manifest.delivered === 0) {
    return new HttpError(
      504,
      'ERR_BALLAST_DEADLINE',
      `no rendition was ready within the ${request.deadlineMs} ms deadline; the jobs were cancelled`,
    );
  }
  shed.inc({ reason: 'incomplete' });
  return new HttpError(
    503,
    'ERR_BALLAST_INCOMPLETE',
    `${manifest.delivered} of ${manifest.asked} renditions were ready within the ${request.deadlineMs} ms deadline; partial=false asks for all of them or none`,
    { 'retry-after': '1', [SHED_HEADER]: 'incomplete' },
  );
}

function countOutcomes(metrics: DegradationMetrics, manifest: Manifest): void {
  for (const r of manifest.renditions) {
    metrics.renditions.inc({ outcome: r.status === 'missing' ? (r.reason ?? 'failed') : r.status === 'pending' ? 'queued' : 'done' });
  }
}

/** The usage hook, once per rendition job: what it cost and what it delivered. */
function reportUsage(
  c: Context<ApiEnv>,
  deps: RenditionRoutes,
  set: RenditionSet,
  states: readonly (JobState | undefined)[],
  status: number,
): void {
  if (!deps.onUsage) return;
  const latencyMs = performance.now() - c.var.startedAt;
  set.entries.forEach((e, i) => {
    if (e.state !== 'queued') return;
    const state = states[i];
    const done = state?.status === 'done' ? state : undefined;
    deps.onUsage?.({
      requestId: c.var.requestId,
      tenant: c.var.tenant,
      jobId: renditionJobId(set.tenant, set.uuid, i),
      mode: c.var.renditionRequest.mode,
      status: done ? 200 : state?.status === 'failed' ? statusForFailure(state.error.code) : status,
      bytesIn: c.var.image.byteLength,
      bytesOut: done?.data.byteLength ?? 0,
      ...(done && Number.isFinite(Number(done.meta.cpuMs)) ? { cpuMs: Number(done.meta.cpuMs) } : {}),
      latencyMs,
    });
  });
}

/** `GET /v1/renditions/:id`: the set's manifest now, its entries filled in as renditions finish. */
const renditionManifest = (queue: JobQueue): Handler<ApiEnv> =>
  async function renditionManifest(c) {
    const set = readSetId(c.var.tenant, c.req.param('id') ?? '');
    if (!set) return errorResponse(404, 'ERR_BALLAST_UNKNOWN_SET', 'no such rendition set (never existed, or not yours)');
    const states = await Promise.all(
      set.entries.map((e, i) => (e.state === 'queued' ? queue.result(renditionJobId(set.tenant, set.uuid, i)) : undefined)),
    );
    const manifest = buildManifest(set, states, false);
    if (manifest.status === 'pending') c.header('retry-after', '1');
    else c.header('x-ballast-harvest', String(manifest.harvest));
    return c.json(manifest, 200);
  };

/** `DELETE /v1/renditions/:id`: cancels every rendition of the set not started yet. */
const cancelRenditions = (queue: JobQueue): Handler<ApiEnv> =>
  async function cancelRenditions(c) {
    const set = readSetId(c.var.tenant, c.req.param('id') ?? '');
    if (!set) return errorResponse(404, 'ERR_BALLAST_UNKNOWN_SET', 'no such rendition set (never existed, or not yours)');
    const cancelled = await Promise.all(
      set.entries.map((e, i) => (e.state === 'queued' ? queue.cancel(renditionJobId(set.tenant, set.uuid, i)) : false)),
    );
    return c.json({ id: set.id, cancelled: cancelled.filter(Boolean).length });
  };
