import type { IdentityClient } from '@ballast/app-identity';
import type { JobQueue } from '@ballast/app-queue';
import {
  type AppEnv,
  type Authenticate,
  type BodyLimits,
  type InputFormat,
  inputFormatsOption,
  type Logger,
  type ResolvedBodyLimits,
  resolveBodyLimits,
} from '@ballast/app-shared';
import type { BrownoutOptions } from '@ballast/backpressure';
import { durationMs, integer } from '@ballast/common';
import type { Hono } from 'hono';
import type { Registry } from 'prom-client';
import type { AdmissionOptions } from './admission.ts';
import type { FairShare, FairShareOptions } from './fair-share.ts';
import type { UsageRoutesOptions } from './routes/usage.ts';
import type { TenantQuotas } from './tenant-quota.ts';

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
  /**
   * How long an enqueue refused because the queue is unavailable (a Redis failover) is
   * retried, ms, and never past three quarters of the time left before the request's
   * deadline (see enqueue.ts); 0 answers 503 at once. Size it to the queue's failover.
   * @default 10000
   */
  enqueueRetryMs?: number;
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
  /** Per-tenant concurrent-job quotas (the rate limits live in the authentication, see `identityAuthentication`). */
  quotas?: TenantQuotas;
  /**
   * Per-client fair share of the workers (see fair-share.ts): jobs per anonymous client,
   * costly requests per client and over all clients, refused before the body is read.
   * Options make this server's own (`workerSlots` taken from the admission options; give
   * a `redis` client to count over every API server); a `FairShare` is shared as is (one
   * for several API servers in one process); `false` turns it off (a load generator
   * standing for many clients from one address).
   * @default {} (counted in this process)
   */
  fairShare?: FairShare | FairShareOptions | false;
  /** The identity edge cache, for `/readyz` (a stale snapshot is reported, not failed; never loaded is not ready). */
  identity?: IdentityClient;
  /** Serve `GET /v1/usage` (the caller's usage so far) from this usage store (see routes/usage.ts). */
  usage?: UsageRoutesOptions;
  /** More routes (e.g. `GET /v1/usage`), added behind `authenticate`, after the built-in ones. */
  routes?: (app: Hono<ApiEnv>) => void;
  /**
   * The brownout dimmer of this server (see brownout.ts): rendition sets and single images
   * sent with `degrade=true` are degraded as it falls, before admission sheds. `false`
   * turns degradation off (shedding only). Options of `@ballast/backpressure`'s
   * `BrownoutController`; its samples are the share of its deadline each admitted sync
   * request took, in per mille, so `setpointMs` is in ‰ here.
   * @default { setpointMs: 600, pole: 0.9, forgetting: 0.7, whenIdle: 'raise' } and the controller's other defaults
   */
  brownout?: BrownoutOptions | false;
  /** How long a sync rendition set's results stay fetchable from the links of its manifest, ms. @default 60000 */
  renditionResultTtlMs?: number;
  /** The usage hook: called once per resize request (and per rendition job) when it ends. */
  onUsage?: (usage: ApiUsage) => void;
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
  /** `degrade=true`: the client accepts a cheaper encoding under load (see brownout.ts). */
  degrade?: boolean;
  /** Jobs the request enqueues, for admission (a rendition set's renditions). @default 1 */
  jobs?: number;
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
  enqueueRetryMs: number;
  bodyBudgetBytes: number;
  inputFormats: readonly InputFormat[];
  body: ResolvedBodyLimits;
  renditionResultTtlMs: number;
}

/** @throws {InvalidOptionError} naming the first invalid option. */
export function resolveApiOptions(options: ApiOptions): ResolvedApiOptions {
  const maxDeadlineMs = durationMs('maxDeadlineMs', options.maxDeadlineMs ?? 60_000, { min: 1 });
  return {
    name: options.name ?? 'api',
    maxDeadlineMs,
    defaultDeadlineMs: durationMs('defaultDeadlineMs', options.defaultDeadlineMs ?? 5000, { min: 1, max: maxDeadlineMs }),
    enqueueRetryMs: durationMs('enqueueRetryMs', options.enqueueRetryMs ?? 10_000, { min: 0 }),
    bodyBudgetBytes: integer('bodyBudgetBytes', options.bodyBudgetBytes ?? 256 * 1024 * 1024, { min: 1 }),
    inputFormats: inputFormatsOption(options.inputFormats),
    body: resolveBodyLimits(options),
    renditionResultTtlMs: durationMs('renditionResultTtlMs', options.renditionResultTtlMs ?? 60_000, { min: 1 }),
  };
}
