import type { JobQueue } from '@ballast/app-queue';
import {
  type AppEnv,
  type Authenticate,
  type BodyLimits,
  DEFAULT_INPUT_FORMATS,
  INPUT_FORMATS,
  type InputFormat,
  type Logger,
  type ResolvedBodyLimits,
  resolveBodyLimits,
} from '@ballast/app-shared';
import { durationMs, InvalidOptionError, integer } from '@ballast/common';
import type { Hono } from 'hono';
import type { Registry } from 'prom-client';
import type { AdmissionOptions } from './admission.ts';
import type { UsageRoutesOptions } from './routes/usage.ts';

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

/** Options of {@link createApi}. Every body limit of @ballast/app-shared's `BodyLimits` applies to the images it reads. */
export interface ApiOptions extends AdmissionOptions, BodyLimits {
  /** The job queue. */
  queue: JobQueue;
  /** A name for logs and metrics. @default 'api' */
  name?: string;
  /** Deadline of a request that names none (`deadlineMs`), ms. @default 5000 */
  defaultDeadlineMs?: number;
  /** Largest `deadlineMs` a client may ask for, ms. @default 60000 */
  maxDeadlineMs?: number;
  /** Bytes of images held in memory at once, over all requests; beyond it, 503 `ERR_BALLAST_BODY_BUDGET`. @default 268435456 (256 MiB) */
  bodyBudgetBytes?: number;
  /**
   * Input formats accepted, known by their first bytes before the job is enqueued; any
   * other input is refused with 415 `ERR_BALLAST_IMAGE_UNSUPPORTED`. SVG is parsed by
   * librsvg (untrusted XML): accept it only by naming `svg` here and in the workers' limits.
   * @default ['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff']
   */
  inputFormats?: readonly InputFormat[];
  /**
   * The authentication seam: middleware run on every `/v1/*` request before anything
   * else is read, setting `c.var.tenant` or throwing an `HttpError` (401/403/429).
   * Identity (API keys behind an edge cache) plugs in here.
   * @default every caller is tenant `anonymous`
   */
  authenticate?: Authenticate;
  /** More routes (e.g. `GET /v1/usage`), added behind `authenticate`, after the built-in ones. */
  routes?: (app: Hono<ApiEnv>) => void;
  /** The usage hook: called once per resize request when it ends. */
  onUsage?: (usage: ApiUsage) => void;
  /** Serve `GET /v1/usage` (the caller's usage so far) from this usage store (see routes/usage.ts), behind `authenticate`. */
  usage?: Omit<UsageRoutesOptions, 'authenticate'>;
  /**
   * Logger (pino): one `info` line per request (with its request id, job id, tenant,
   * status and latency) and one per problem, through a child carrying `service: name`.
   * @default JSON lines on stderr at level `warn`
   */
  logger?: Logger;
  /** Prometheus registry to register the metrics in. @default a new registry */
  registry?: Registry;
}

/** What the resize chain settles on before the handler runs. */
export interface ResizeRequest {
  resize: Record<string, unknown>;
  mode: 'sync' | 'async';
  deadlineMs: number;
}

/** The API's request context: the shared variables, and what the resize chain reads into it. */
export interface ApiEnv extends AppEnv {
  Variables: AppEnv['Variables'] & { request: ResizeRequest; image: Buffer; usage: Partial<ApiUsage> };
}

/** {@link ApiOptions} validated. */
export interface ResolvedApiOptions {
  name: string;
  defaultDeadlineMs: number;
  maxDeadlineMs: number;
  bodyBudgetBytes: number;
  inputFormats: readonly InputFormat[];
  body: ResolvedBodyLimits;
}

/** @throws {InvalidOptionError} naming the first invalid option. */
export function resolveApiOptions(options: ApiOptions): ResolvedApiOptions {
  const maxDeadlineMs = durationMs('maxDeadlineMs', options.maxDeadlineMs ?? 60_000, { min: 1 });
  return {
    name: options.name ?? 'api',
    maxDeadlineMs,
    defaultDeadlineMs: durationMs('defaultDeadlineMs', options.defaultDeadlineMs ?? 5000, { min: 1, max: maxDeadlineMs }),
    bodyBudgetBytes: integer('bodyBudgetBytes', options.bodyBudgetBytes ?? 256 * 1024 * 1024, { min: 1 }),
    inputFormats: inputFormats(options.inputFormats),
    body: resolveBodyLimits(options),
  };
}

/** Validates a list of input formats (shared by the API and the workers' limits). */
export function inputFormats(value: readonly InputFormat[] | undefined): readonly InputFormat[] {
  if (value === undefined) return DEFAULT_INPUT_FORMATS;
  if (!Array.isArray(value) || value.length === 0 || value.some((f) => !(INPUT_FORMATS as readonly string[]).includes(f))) {
    throw new InvalidOptionError('inputFormats', `a non-empty list of ${INPUT_FORMATS.join(', ')}`, value);
  }
  return value;
}
