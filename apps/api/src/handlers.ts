import type { JobQueue, JobResult } from '@ballast/app-queue';
import {
  annotate,
  answeredStatus,
  type BodyBudget,
  clientSignal,
  errorResponse,
  HttpError,
  type InputFormat,
  type ResolvedBodyLimits,
  readBody,
  sniffImageFormat,
  unsupportedInput,
} from '@ballast/app-shared';
import { linkSignal } from '@ballast/common';
import type { Handler, MiddlewareHandler } from 'hono';
import type { Admission } from './admission.ts';
import type { FailoverEnqueue } from './enqueue.ts';
import type { ApiEnv, ApiUsage } from './options.ts';
import { resultResponse } from './results.ts';
import { ownedJobId, ownsJob } from './tenancy.ts';
import { markStage } from './timing.ts';

/** A sync result is delivered as soon as it exists: kept briefly. An async one waits to be fetched. */
const SYNC_RESULT_TTL_MS = 10_000;

/** Admission before the body is read: the permit is held until the request ends. */
export const admit = (admission: Admission): MiddlewareHandler<ApiEnv> =>
  async function admit(c, next) {
    const permit = await admission.admit(c.var.request.deadlineMs, c.var.request.jobs);
    try {
      await next();
    } finally {
      permit.release({ ok: answeredStatus(c) < 500 });
    }
  };

/**
 * Reads the image within the body limits and the server's budget into `c.var.image`: an
 * empty body is 400; a body that is not an image in an accepted format (known by its
 * first bytes) is 415 before it is enqueued, so no decoder ever sees it.
 */
export const readImage = (limits: ResolvedBodyLimits, budget: BodyBudget, formats: readonly InputFormat[]): MiddlewareHandler<ApiEnv> =>
  async function readImage(c, next) {
    const lease = budget.lease();
    try {
      const image = await readBody(c, limits, lease);
      c.var.usage.bytesIn = image.byteLength;
      if (image.byteLength === 0) throw new HttpError(400, 'ERR_BALLAST_EMPTY_BODY', 'request body is empty; send the image bytes');
      const format = sniffImageFormat(image);
      if (format === undefined || !formats.includes(format)) {
        throw new HttpError(415, 'ERR_BALLAST_IMAGE_UNSUPPORTED', unsupportedInput(formats));
      }
      c.set('image', image);
      await next();
    } finally {
      lease.release();
    }
  };

/**
 * Enqueues the job (acknowledged once durable; retried across a failover of the queue), then answers 202 with its id (async) or
 * waits for the result within the deadline (sync). A client that leaves, or a deadline
 * that passes, cancels the job.
 */
export const resize = (queue: JobQueue, failover: FailoverEnqueue): Handler<ApiEnv> =>
  async function resize(c) {
    const { resize: params, mode, deadlineMs } = c.var.request;
    const deadlineAt = Date.now() + deadlineMs;
    const jobId = await failover.enqueue({
      id: ownedJobId(c.var.tenant),
      data: c.var.image,
      params: { resize: params, tenant: c.var.tenant, requestId: c.var.requestId },
      deadlineAt,
      resultTtlMs: mode === 'sync' ? SYNC_RESULT_TTL_MS : undefined,
      attended: mode === 'sync',
    });
    annotate(c, { jobId });
    markStage(c, 'enqueued');
    if (mode === 'async') {
      c.header('location', `/v1/jobs/${jobId}`);
      return c.json({ id: jobId, status: 'pending', result: `/v1/jobs/${jobId}` }, 202);
    }
    const result = await waitFor(c.var, queue, jobId, deadlineAt, clientSignal(c));
    if (!result) return new Response(null, { status: 499 });
    if (result.status === 'done') Object.assign(c.var.usage, { bytesOut: result.data.byteLength, cpuMs: Number(result.meta.cpuMs) });
    return resultResponse(result);
  };

/** Waits for a job's result; undefined when the client left. Cancels the job unless it finished. */
async function waitFor(
  vars: ApiEnv['Variables'],
  queue: JobQueue,
  jobId: string,
  deadlineAt: number,
  client: AbortSignal,
): Promise<Exclude<JobResult, { status: 'pending' }> | undefined> {
  const linked = linkSignal([client], deadlineAt - Date.now());
  try {
    return (await queue.wait(jobId, linked.signal)) as Exclude<JobResult, { status: 'pending' }>;
  } catch (error) {
    queue.cancel(jobId).catch(() => {});
    if (client.aborted) {
      vars.log.info({ jobId }, 'client went away; job cancelled');
      return undefined;
    }
    if (linked.signal.aborted) {
      throw new HttpError(
        504,
        'ERR_BALLAST_DEADLINE',
        `no result within the ${vars.request.deadlineMs} ms deadline; the job was cancelled`,
      );
    }
    throw error;
  } finally {
    linked.dispose();
  }
}

/** `GET /v1/jobs/:id`: the result, 202 while pending, 404 when unknown or expired. */
export const jobResult = (queue: JobQueue): Handler<ApiEnv> =>
  async function jobResult(c) {
    // Another tenant's job is as unknown as one that never existed.
    const id = c.req.param('id') ?? '';
    const state = ownsJob(c.var.tenant, id) ? await queue.result(id) : undefined;
    if (!state) return errorResponse(404, 'ERR_BALLAST_UNKNOWN_JOB', 'no such job (never existed, or its result has expired)');
    if (state.status === 'pending') return c.json({ id: state.id, status: 'pending' }, 202, { 'retry-after': '1' });
    return resultResponse(state);
  };

/** `DELETE /v1/jobs/:id`: cancels the job unless it has finished. */
export const cancelJob = (queue: JobQueue): Handler<ApiEnv> =>
  async function cancelJob(c) {
    const id = c.req.param('id') ?? '';
    if (!ownsJob(c.var.tenant, id))
      return errorResponse(404, 'ERR_BALLAST_UNKNOWN_JOB', 'no such job (never existed, or its result has expired)');
    return c.json({ id, cancelled: await queue.cancel(id) });
  };

/**
 * Once a resize request ends, whatever its answer (an error included): names its job in
 * `x-job-id` and calls the usage hook, if any.
 */
export const jobOutcome = (onUsage: ((usage: ApiUsage) => void) | undefined): MiddlewareHandler<ApiEnv> =>
  async function jobOutcome(c, next) {
    await next();
    const fields = c.var.fields;
    if (typeof fields.jobId === 'string') c.res.headers.set('x-job-id', fields.jobId);
    if (!onUsage) return;
    onUsage({
      requestId: c.var.requestId,
      tenant: c.var.tenant,
      mode: (fields.mode as ApiUsage['mode'] | undefined) ?? 'sync',
      status: answeredStatus(c),
      bytesIn: 0,
      bytesOut: 0,
      latencyMs: performance.now() - c.var.startedAt,
      ...(typeof fields.jobId === 'string' ? { jobId: fields.jobId } : {}),
      ...c.var.usage,
    });
  };
