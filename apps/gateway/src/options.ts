import {
  type AppEnv,
  type Authenticate,
  type BodyLimits,
  GATEWAY_STRATEGIES,
  type InputFormat,
  inputFormatsOption,
  type Logger,
  type ResolvedBodyLimits,
  resolveBodyLimits,
} from '@ballast/app-shared';
import { durationMs, finiteNumber, InvalidOptionError, integer, oneOf, ratio } from '@ballast/common';
import type { Hono } from 'hono';
import type { Registry } from 'prom-client';
import type { ObservabilityOptions } from './observability/index.ts';
import { type ClientRateLimitOptions, type ResolvedClientRateLimit, resolveClientRateLimit } from './rate-limit.ts';

/** Balancing strategies the gateway can be configured with. */
export const STRATEGIES: typeof GATEWAY_STRATEGIES = GATEWAY_STRATEGIES;
export type StrategyName = (typeof GATEWAY_STRATEGIES)[number];

/** One API server behind the gateway. */
export interface Upstream {
  id: string;
  /** Base URL, e.g. `http://127.0.0.1:8081`. */
  url: string;
}

/** Adaptive throttling of work-creating requests (see {@link GatewayOptions.throttle}). */
export interface ThrottleOptions {
  /** Accepted answers needed per request to stay open: the API servers may shed up to `1 − 1/k` first. @default 2 */
  k?: number;
  /** Window of answers counted, ms. @default 10000 */
  windowMs?: number;
  /** Answers needed in the window before it turns anything away. @default 50 */
  minRequests?: number;
}

/** Options of {@link createGateway}. Every body limit of @ballast/app-shared's `BodyLimits` applies to the bodies it buffers. */
export interface GatewayOptions extends BodyLimits {
  upstreams: readonly Upstream[];
  /** Balancing strategy. @default 'p2c' */
  strategy?: StrategyName;
  /** Health probe interval (GET `/healthz` on each upstream), ms. @default 500 */
  healthIntervalMs?: number;
  /** Phi threshold above which an upstream is suspected and taken out of rotation. @default 8 */
  phiThreshold?: number;
  /** Pause tolerated between health answers before suspicion grows, ms. @default 1000 */
  acceptablePauseMs?: number;
  /**
   * Longest wait for an upstream's response headers, ms. Each request waits at most its
   * own deadline (`deadlineMs`, or `defaultDeadlineMs`) plus `deadlineGraceMs`, and never
   * longer than this. @default 60000
   */
  upstreamTimeoutMs?: number;
  /** Deadline of a request that names no `deadlineMs`, ms: the API servers' own default. @default 5000 */
  defaultDeadlineMs?: number;
  /**
   * Time past a request's deadline the gateway still waits, ms: the API server answers
   * 504 itself at the deadline (cancelling the job); the gateway cuts a server that says
   * nothing (paused, stuck) this much later. @default 1000
   */
  deadlineGraceMs?: number;
  /** How long a tripped circuit stays open, ms. @default 5000 */
  breakerResetMs?: number;
  /** Attempts per request, first one included; retries go only to requests that never reached an upstream. @default 3 */
  maxAttempts?: number;
  /** Retries allowed as a share of requests (retry budget). @default 0.2 */
  retryBudgetRatio?: number;
  /** Retries per second the budget always allows, however few requests there are. @default 5 */
  minRetriesPerSec?: number;
  /** Consecutive failures after which the balancer ejects an upstream for a while (outlier detection); 0 disables. @default 5 */
  ejectAfterFailures?: number;
  /**
   * Client-side adaptive throttling of work-creating requests (every method but GET and
   * HEAD): while the API servers shed (503 with `x-ballast-shed`, or 429), the gateway
   * turns part of the traffic away itself, before reading its body, with probability
   * `(answered − k × accepted) / (answered + 1)` over the last `windowMs`. Only requests
   * an API server answered count: one still uploading, or turned away here, moves
   * nothing. `false` disables it.
   * @default { k: 2, windowMs: 10000, minRequests: 50 }
   */
  throttle?: ThrottleOptions | false;
  /**
   * The request rate of one client address (the peer's, or the client's as a trusted proxy
   * reports it), GCRA: beyond it, 429 `ERR_BALLAST_RATE_LIMITED` with `Retry-After`, before
   * any other work (routing, authentication, the body). Every request counts, junk too.
   * `false` turns it off.
   * @default { perSec: 100, burst: 200, maxClients: 100000 }
   */
  rateLimit?: ClientRateLimitOptions | false;
  /** Requests forwarded at once (after their bodies are read); beyond it, 503. @default 2048 */
  maxInflight?: number;
  /**
   * Requests in flight to one API server at once; a request over it is sent to another
   * (it never reached this one). Match the API servers' own `maxInflight`. @default 256
   */
  maxPerUpstream?: number;
  /**
   * When an API server answers a client 429 with `Retry-After`, the same request (method,
   * target, credentials) from the same client is answered 429 at the gateway, before its
   * body is read, until then — for at most this long, ms. 0 turns it off. @default 30000
   */
  holdRefusedMs?: number;
  /**
   * Bytes of request bodies held in memory at once, over all requests (the gateway reads
   * a body whole before forwarding it, so a slow upload never occupies an API server);
   * beyond it, 503 `ERR_BALLAST_BODY_BUDGET`. @default 268435456 (256 MiB)
   */
  bodyBudgetBytes?: number;
  /**
   * The most of `bodyBudgetBytes` one client (one address: the peer's, or the client's as
   * a trusted proxy reports it) may hold, so one client's uploads cannot spend everyone's
   * budget. @default 33554432 (32 MiB), at most `bodyBudgetBytes`
   */
  bodyBudgetPerClientBytes?: number;
  /**
   * Input formats the API servers accept: a body whose first bytes name none of them is
   * refused with 415 at the gateway, before it reaches an API server (which checks again).
   * @default ['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff']
   */
  inputFormats?: readonly InputFormat[];
  /**
   * Peers whose forwarding headers (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`) are kept
   * and extended: addresses, CIDR ranges or `loopback`, `private`, `linklocal`. From any
   * other peer they are replaced with what the gateway saw. @default [] (trust none)
   */
  trustedProxies?: readonly string[];
  /**
   * The authentication seam: middleware that decides who is calling before any body is
   * read, setting `c.var.tenant` or throwing an `HttpError` (401/403/429).
   * @default every caller is `anonymous`
   */
  authenticate?: Authenticate;
  /** Adds admin routes to the operational listener's app (a dashboard, say), before it serves. */
  opsRoutes?: (ops: Hono<AppEnv>) => void;
  /** Prometheus registry. @default a new registry */
  registry?: Registry;
  /**
   * Front-door SLIs, stage timings, the dashboard (`/dashboard` on the operational app)
   * and request timelines (`/trace/:requestId`); the queue, workers and usage views feed
   * the dashboard. `false` turns all of it off (to measure what it costs).
   * @default {}
   */
  observability?: ObservabilityOptions | false;
  /**
   * Logger (pino): one `info` line per request (request id, upstream, status, latency) and
   * a `warn` line per upstream failure, through a child carrying `service: 'gateway'`.
   * @default JSON lines on stderr at level `warn`
   */
  logger?: Logger;
}

/** {@link GatewayOptions} validated, defaults filled in. */
export interface ResolvedGatewayOptions {
  upstreams: readonly Upstream[];
  strategy: StrategyName;
  healthIntervalMs: number;
  phiThreshold: number;
  acceptablePauseMs: number;
  upstreamTimeoutMs: number;
  defaultDeadlineMs: number;
  deadlineGraceMs: number;
  breakerResetMs: number;
  maxAttempts: number;
  retryBudgetRatio: number;
  minRetriesPerSec: number;
  ejectAfterFailures: number;
  throttle: Required<ThrottleOptions> | false;
  rateLimit: ResolvedClientRateLimit | false;
  maxInflight: number;
  maxPerUpstream: number;
  holdRefusedMs: number;
  bodyBudgetBytes: number;
  bodyBudgetPerClientBytes: number;
  body: ResolvedBodyLimits;
  trustedProxies: readonly string[];
  inputFormats: readonly InputFormat[];
}

/**
 * Validates {@link GatewayOptions} and fills in the defaults.
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function resolveGatewayOptions(options: GatewayOptions): ResolvedGatewayOptions {
  if (!Array.isArray(options?.upstreams)) throw new InvalidOptionError('upstreams', 'an array of { id, url }', options?.upstreams);
  const throttle = options.throttle;
  return {
    upstreams: options.upstreams,
    strategy: oneOf('strategy', options.strategy ?? 'p2c', STRATEGIES),
    healthIntervalMs: durationMs('healthIntervalMs', options.healthIntervalMs ?? 500, { min: 10 }),
    phiThreshold: finiteNumber('phiThreshold', options.phiThreshold ?? 8, { min: 0.1 }),
    acceptablePauseMs: durationMs('acceptablePauseMs', options.acceptablePauseMs ?? 1000),
    upstreamTimeoutMs: durationMs('upstreamTimeoutMs', options.upstreamTimeoutMs ?? 60_000, { min: 1 }),
    defaultDeadlineMs: durationMs('defaultDeadlineMs', options.defaultDeadlineMs ?? 5000, { min: 1 }),
    deadlineGraceMs: durationMs('deadlineGraceMs', options.deadlineGraceMs ?? 1000),
    breakerResetMs: durationMs('breakerResetMs', options.breakerResetMs ?? 5000, { min: 1 }),
    maxAttempts: integer('maxAttempts', options.maxAttempts ?? 3, { min: 1 }),
    retryBudgetRatio: ratio('retryBudgetRatio', options.retryBudgetRatio ?? 0.2),
    minRetriesPerSec: finiteNumber('minRetriesPerSec', options.minRetriesPerSec ?? 5, { min: 0 }),
    ejectAfterFailures: integer('ejectAfterFailures', options.ejectAfterFailures ?? 5, { min: 0 }),
    throttle:
      throttle === false
        ? false
        : {
            k: finiteNumber('throttle.k', throttle?.k ?? 2, { min: 1 }),
            windowMs: durationMs('throttle.windowMs', throttle?.windowMs ?? 10_000, { min: 1 }),
            minRequests: integer('throttle.minRequests', throttle?.minRequests ?? 50, { min: 0 }),
          },
    rateLimit: resolveClientRateLimit(options.rateLimit),
    maxInflight: integer('maxInflight', options.maxInflight ?? 2048, { min: 1 }),
    maxPerUpstream: integer('maxPerUpstream', options.maxPerUpstream ?? 256, { min: 1 }),
    holdRefusedMs: durationMs('holdRefusedMs', options.holdRefusedMs ?? 30_000),
    bodyBudgetBytes: integer('bodyBudgetBytes', options.bodyBudgetBytes ?? 256 * 1024 * 1024, { min: 1 }),
    bodyBudgetPerClientBytes: integer('bodyBudgetPerClientBytes', options.bodyBudgetPerClientBytes ?? 32 * 1024 * 1024, { min: 1 }),
    body: resolveBodyLimits(options),
    trustedProxies: options.trustedProxies ?? [],
    inputFormats: inputFormatsOption(options.inputFormats),
  };
}
