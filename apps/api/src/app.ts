import { type JobQueue, type JobResult, parseResizeParams, QueueFullError, QueueUnavailableError } from '@ballast/app-queue';
import {
  type AppEnv,
  clientSignal,
  createLogger,
  errorBody,
  HttpError,
  type Logger,
  operationalApp,
  readBody,
  requestIdFrom,
  resolveBodyLimits,
  SHED_HEADER,
} from '@ballast/app-shared';
import { isShedError, type Permit } from '@ballast/backpressure';
import { durationMs, integer, isInvalidOptionError, linkSignal } from '@ballast/common';
import { type Context, Hono } from 'hono';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Admission, type AdmissionOptions } from './admission.ts';
import { statusForFailure } from './http.ts';
import { type UsageRoutesOptions, usageRoutes } from './routes/usage.ts';

/** Who is calling, as the auth hook decides. */
export type AuthResult = { tenant: string } | { reject: { status: 401 | 403 | 429; message: string } };

/** One request's outcome, reported to the usage hook. */
export interface ApiUsage {
  requestId: string;
  tenant: string;
  jobId?: string;
  mode: 'sync' | 'async';
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** CPU time of the conversion, ms (sync requests that completed). */
  cpuMs?: number;
  latencyMs: number;
}

/** Options of {@link createApi}. */
export interface ApiOptions extends AdmissionOptions {
  /** The job queue. */
  queue: JobQueue;
  /** A name for logs and metrics. @default 'api' */
  name?: string;
  /** Largest request body, bytes; checked before buffering. @default 10_485_760 (10 MiB) */
  maxBodyBytes?: number;
  /** Deadline of a request that names none (`deadlineMs`), ms. @default 5000 */
  defaultDeadlineMs?: number;
  /** Largest `deadlineMs` a client may ask for, ms. @default 60000 */
  maxDeadlineMs?: number;
  /**
   * The auth hook: decides who the caller is, before anything else is done. Identity
   * (API keys behind an edge cache) plugs in here.
   * @default every caller is tenant `anonymous`
   */
  authenticate?: (request: Request) => AuthResult | Promise<AuthResult>;
  /** The usage hook: called once per resize request when it ends. */
  onUsage?: (usage: ApiUsage) => void;
  /** Serve `GET /v1/usage` (the caller's usage so far) from this usage store (see routes/usage.ts). */
  usage?: Omit<UsageRoutesOptions, 'authenticate'>;
  /**
   * Logger (pino): one `info` line per finished request (with its request id, job id,
   * status and latency) and one per problem (`warn`, `error`), through a child carrying
   * `service: name`.
   * @default JSON lines on stderr at level `warn`
   */
  logger?: Logger;
  /** Prometheus registry to register the metrics in. @default a new registry */
  registry?: Registry;
}

/** A built API: its Hono app and what it owns. */
export interface Api extends AsyncDisposable {
  readonly app: Hono;
  /** The operational listener's app: `/healthz`, `/readyz`, `/metrics`. */
  readonly ops: Hono<AppEnv>;
  readonly registry: Registry;
  readonly admission: Admission;
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
  /** Stops admitting; does not close the queue (its owner does). */
  close(): Promise<void>;
}

const IMAGE_TYPES: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', avif: 'image/avif' };
const SYNC_RESULT_TTL_MS = 10_000;

const RESIZE_KEYS = ['width', 'height', 'fit', 'format', 'quality', 'effort', 'animated', 'keepMetadata'];

/**
 * The API service: `POST /v1/resize` (sync or async), `GET /v1/jobs/:id`,
 * `DELETE /v1/jobs/:id`, `/healthz`, `/readyz`, `/metrics`.
 *
 * Every parameter is validated and the request admitted (or shed with 503 +
 * `Retry-After`) before the body is read; the body is read against its limit; the job
 * is enqueued (acknowledged once durable); a sync request waits within its deadline and
 * cancels the job if the client goes away.
 */
export function createApi(options: ApiOptions): Api {
  const queue = options.queue;
  const name = options.name ?? 'api';
  const bodyLimits = resolveBodyLimits({ maxBodyBytes: options.maxBodyBytes });
  const maxDeadlineMs = durationMs('maxDeadlineMs', options.maxDeadlineMs ?? 60_000, { min: 1 });
  const defaultDeadlineMs = durationMs('defaultDeadlineMs', options.defaultDeadlineMs ?? 5000, { min: 1, max: maxDeadlineMs });
  const authenticate = options.authenticate ?? (() => ({ tenant: 'anonymous' }));
  const log = (options.logger ?? createLogger()).child({ service: options.name ?? 'api' });
  const admission = new Admission(() => queue.depth(), options);
  const registry = options.registry ?? new Registry();
  const requests = new Counter({
    name: 'ballast_api_requests_total',
    help: 'Resize requests by mode and status',
    labelNames: ['mode', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'ballast_api_request_seconds',
    help: 'Resize request latency, by mode',
    labelNames: ['mode'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const shed = new Counter({
    name: 'ballast_api_shed_total',
    help: 'Requests shed, by reason',
    labelNames: ['reason'],
    registers: [registry],
  });
  new Gauge({
    name: 'ballast_api_queue_depth',
    help: 'Jobs waiting or in progress in the queue (NaN while it is unreachable)',
    registers: [registry],
    async collect() {
      // Read now: admission's own reading is cached and counts the requests it admitted since.
      this.set(await queue.depth().catch(() => Number.NaN));
    },
  });
  new Gauge({
    name: 'ballast_api_inflight',
    help: 'Requests held by this server',
    registers: [registry],
    collect() {
      this.set(admission.limiter.inflight);
    },
  });

  const app = new Hono();
  let draining = false;
  app.use('*', async (c, next) => {
    await next();
    if (draining) c.res.headers.set('connection', 'close');
  });

  app.get('/healthz', (c) => (draining ? c.json({ ok: false, service: name, draining }, 503) : c.json({ ok: true, service: name })));
  app.get('/readyz', async (c) => {
    if (draining) return c.json({ ready: false, queue: queue.kind, draining }, 503);
    try {
      await queue.ping();
      return c.json({ ready: true, queue: queue.kind });
    } catch (error) {
      return c.json({ ready: false, queue: queue.kind, error: String(error) }, 503);
    }
  });
  app.get('/metrics', async (c) => c.text(await registry.metrics(), 200, { 'content-type': registry.contentType }));

  if (options.usage) app.route('/', usageRoutes({ ...options.usage, authenticate }));

  app.post('/v1/resize', async (c) => {
    const started = performance.now();
    const requestId = requestIdFrom(c.req.header('x-request-id'));
    c.header('x-request-id', requestId);
    const mode = c.req.query('mode') === 'async' ? 'async' : 'sync';
    let tenant = 'anonymous';
    let permit: Permit | undefined;
    let jobId: string | undefined;
    let bytesIn = 0;
    const finish = (response: Response, extra: Partial<ApiUsage> = {}): Response => {
      permit?.release({ ok: response.status < 500 });
      response.headers.set('x-request-id', requestId);
      if (jobId !== undefined) response.headers.set('x-job-id', jobId);
      const latencyMs = performance.now() - started;
      requests.inc({ mode, status: response.status });
      latency.observe({ mode }, latencyMs / 1000);
      const usage: ApiUsage = { requestId, tenant, mode, status: response.status, bytesIn, bytesOut: 0, latencyMs, ...extra };
      if (jobId !== undefined) usage.jobId = jobId;
      options.onUsage?.(usage);
      log.info({ requestId, jobId, tenant, mode, status: response.status, ms: Math.round(latencyMs * 10) / 10 }, 'request');
      return response;
    };
    try {
      const auth = await authenticate(c.req.raw);
      if ('reject' in auth) throw new HttpError(auth.reject.status, 'ERR_BALLAST_AUTH', auth.reject.message);
      tenant = auth.tenant;
      // 1. Every parameter, before anything is read.
      const { resize, deadlineMs } = parseQuery(c, defaultDeadlineMs, maxDeadlineMs);
      const type = c.req.header('content-type') ?? '';
      if (type !== '' && !type.startsWith('image/') && !type.startsWith('application/octet-stream')) {
        throw new HttpError(
          415,
          'ERR_BALLAST_CONTENT_TYPE',
          `content-type must be image/* or application/octet-stream, got ${JSON.stringify(type)}`,
        );
      }
      // 2. Admission: shed now rather than after reading a body we cannot serve in time.
      permit = await admission.admit(deadlineMs);
      // 3. The body, against its limit.
      const body = await readBody(c, bodyLimits);
      bytesIn = body.byteLength;
      if (body.byteLength === 0) throw new HttpError(400, 'ERR_BALLAST_EMPTY_BODY', 'request body is empty; send the image bytes');
      // 4. Enqueue; acknowledged once durable.
      const deadlineAt = Date.now() + deadlineMs;
      // A sync result is delivered as soon as it exists: keep it briefly; an async one waits to be fetched.
      const resultTtlMs = mode === 'sync' ? SYNC_RESULT_TTL_MS : undefined;
      jobId = await queue.enqueue({
        data: body,
        params: { resize, tenant, requestId },
        deadlineAt,
        resultTtlMs,
        attended: mode === 'sync',
      });
      c.header('x-job-id', jobId);
      if (mode === 'async') {
        c.header('location', `/v1/jobs/${jobId}`);
        return finish(c.json({ id: jobId, status: 'pending', result: `/v1/jobs/${jobId}` }, 202));
      }
      // 5. Sync: wait within the deadline; a client that leaves cancels the job.
      const client = clientSignal(c);
      const linked = linkSignal([client], deadlineAt - Date.now());
      let result: JobResult;
      try {
        result = await queue.wait(jobId, linked.signal);
      } catch (error) {
        const id = jobId;
        queue.cancel(id).catch(() => {});
        if (client.aborted) {
          log.info({ requestId, jobId: id }, 'client went away; job cancelled');
          return finish(new Response(null, { status: 499 }));
        }
        if (linked.signal.aborted) {
          throw new HttpError(504, 'ERR_BALLAST_DEADLINE', `no result within the ${deadlineMs} ms deadline; the job was cancelled`);
        }
        throw error;
      } finally {
        linked.dispose();
      }
      const response = resultResponse(c, result);
      if (result.status === 'done') {
        const wallMs = Number(result.meta.wallMs);
        admission.observe(wallMs);
        setMetaHeaders(response, result.meta);
        return finish(response, { bytesOut: result.data.byteLength, cpuMs: Number(result.meta.cpuMs) });
      }
      return finish(response);
    } catch (error) {
      return finish(errorResponse(error, log, name, requestId));
    }
  });

  app.get('/v1/jobs/:id', async (c) => {
    try {
      const state = await queue.result(c.req.param('id'));
      if (!state) return c.json(errorBody('ERR_BALLAST_UNKNOWN_JOB', 'no such job (never existed, or its result has expired)'), 404);
      if (state.status === 'pending') {
        c.header('retry-after', '1');
        return c.json({ id: state.id, status: 'pending' }, 202);
      }
      const response = resultResponse(c, state);
      if (state.status === 'done') setMetaHeaders(response, state.meta);
      return response;
    } catch (error) {
      return errorResponse(error, log, name, c.req.header('x-request-id') ?? '');
    }
  });

  app.delete('/v1/jobs/:id', async (c) => {
    try {
      const cancelled = await queue.cancel(c.req.param('id'));
      return c.json({ id: c.req.param('id'), cancelled });
    } catch (error) {
      return errorResponse(error, log, name, c.req.header('x-request-id') ?? '');
    }
  });

  const close = async (): Promise<void> => {
    admission[Symbol.dispose]();
  };
  const ops = operationalApp({
    service: name,
    registry,
    health: () => ({ ok: !draining, draining }),
    ready: async () => {
      if (draining) return { ready: false, queue: queue.kind, draining };
      return queue.ping().then(
        () => ({ ready: true, queue: queue.kind }),
        () => ({ ready: false, queue: queue.kind }),
      );
    },
  });
  return {
    app,
    ops,
    registry,
    admission,
    drain: () => {
      draining = true;
    },
    get draining() {
      return draining;
    },
    close,
    [Symbol.asyncDispose]: close,
  };

  function errorResponse(error: unknown, logFn: Logger, _service: string, requestId: string): Response {
    if (error instanceof HttpError) return json(error.status, errorBody(error.code, error.message), error.headers);
    if (isInvalidOptionError(error)) return json(400, errorBody(error.code, error.message));
    if (isShedError(error)) {
      shed.inc({ reason: error.reason });
      return json(503, errorBody('ERR_BALLAST_OVERLOADED', error.message), {
        'retry-after': String(Math.ceil(error.retryAfterMs / 1000)),
        [SHED_HEADER]: error.reason,
      });
    }
    if (error instanceof QueueFullError) {
      shed.inc({ reason: 'queueFull' });
      return json(503, errorBody(error.code, error.message), { 'retry-after': '1', [SHED_HEADER]: 'queueFull' });
    }
    if (error instanceof QueueUnavailableError) {
      logFn.warn({ requestId }, error.message);
      return json(503, errorBody(error.code, error.message), { 'retry-after': '1' });
    }
    logFn.error({ requestId, err: error }, 'internal error');
    return json(500, errorBody('ERR_BALLAST_INTERNAL', 'internal error'));
  }
}

function parseQuery(c: Context, defaultDeadlineMs: number, maxDeadlineMs: number): { resize: Record<string, unknown>; deadlineMs: number } {
  const query = c.req.query();
  for (const [key, values] of Object.entries(c.req.queries())) {
    if (values.length > 1) {
      throw new HttpError(
        400,
        'ERR_BALLAST_INVALID_OPTION',
        `parameter ${JSON.stringify(key)} is given ${values.length} times; give it once`,
      );
    }
  }
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(query)) {
    if (key === 'mode') {
      if (value !== 'sync' && value !== 'async')
        throw new HttpError(400, 'ERR_BALLAST_INVALID_OPTION', `mode must be sync or async, got ${JSON.stringify(value)}`);
    } else if (key === 'deadlineMs') {
      // handled below
    } else if (RESIZE_KEYS.includes(key)) raw[key] = value;
    else
      throw new HttpError(
        400,
        'ERR_BALLAST_INVALID_OPTION',
        `unknown parameter ${JSON.stringify(key)}; expected one of mode, deadlineMs, ${RESIZE_KEYS.join(', ')}`,
      );
  }
  const params = parseResizeParams(raw); // throws InvalidOptionError → 400
  let deadlineMs = defaultDeadlineMs;
  if (query.deadlineMs !== undefined) {
    const n = /^\d+$/.test(query.deadlineMs) ? Number(query.deadlineMs) : Number.NaN;
    if (!(n >= 1 && n <= maxDeadlineMs)) {
      throw new HttpError(
        400,
        'ERR_BALLAST_INVALID_OPTION',
        `deadlineMs must be an integer between 1 and ${maxDeadlineMs}, got ${JSON.stringify(query.deadlineMs)}`,
      );
    }
    deadlineMs = n;
  }
  return { resize: params as unknown as Record<string, unknown>, deadlineMs };
}

function resultResponse(c: Context, result: JobResult): Response {
  switch (result.status) {
    case 'done': {
      const format = String(result.meta.format ?? 'jpeg');
      return c.body(result.data as Uint8Array<ArrayBuffer>, 200, { 'content-type': IMAGE_TYPES[format] ?? 'application/octet-stream' });
    }
    case 'failed':
      return c.json(errorBody(result.error.code, result.error.message), statusForFailure(result.error.code) as 400);
    case 'expired':
      return c.json(errorBody('ERR_BALLAST_DEADLINE', 'the job expired before a worker could take it'), 504);
    case 'cancelled':
      return c.json(errorBody('ERR_BALLAST_CANCELLED', 'the job was cancelled'), 410);
  }
}

function setMetaHeaders(response: Response, meta: Record<string, unknown>): void {
  for (const key of ['cpuMs', 'wallMs', 'queuedMs'] as const) {
    const value = Number(meta[key]);
    if (Number.isFinite(value)) response.headers.set(`x-${key.replace('Ms', '-ms').toLowerCase()}`, value.toFixed(2));
  }
  if (meta.worker !== undefined) response.headers.set('x-worker', String(meta.worker));
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}
