import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import {
  type AppEnv,
  clientSignal,
  createLogger,
  HttpError,
  type Logger,
  nodeRequest,
  operationalApp,
  readBody,
  requestIdFrom,
  resolveBodyLimits,
  SHED_HEADER,
} from '@ballast/app-shared';
import { AdaptiveThrottle, ConcurrencyLimiter, isShedError } from '@ballast/backpressure';
import { BrokenCircuitError, CircuitBreaker, isBrokenCircuitError, isTimeoutError } from '@ballast/circuit-breaker';
import { durationMs, integer, oneOf, withoutStack } from '@ballast/common';
import { type BalancerConnection, connectBalancer, HealthPoller, HeartbeatMonitor, PhiAccrualDetector } from '@ballast/failure-detector';
import { HOP_BY_HOP_HEADERS, isNoEndpointAvailableError, LoadBalancer, type PickHandle, strategyByName } from '@ballast/load-balancer';
import { constantBackoff, isRetryBudgetExhaustedError, isRetryError, RatioBudget, RetryPolicy } from '@ballast/retry';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Balancing strategies the gateway can be configured with. */
export const STRATEGIES = ['p2c', 'round-robin', 'least-connections', 'peak-ewma', 'random'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/** One API server behind the gateway. */
export interface Upstream {
  id: string;
  /** Base URL, e.g. `http://127.0.0.1:8081`. */
  url: string;
}

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  upstreams: readonly Upstream[];
  /** Balancing strategy. @default 'p2c' */
  strategy?: StrategyName;
  /** Health probe interval (GET `/healthz` on each upstream), ms. @default 500 */
  healthIntervalMs?: number;
  /** Phi threshold above which an upstream is suspected and taken out of rotation. @default 8 */
  phiThreshold?: number;
  /** Pause tolerated between health answers before suspicion grows, ms. @default 1000 */
  acceptablePauseMs?: number;
  /** Time for an upstream's response headers, ms (a sync resize answers when done). @default 60000 */
  upstreamTimeoutMs?: number;
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
   * HEAD): when the API servers shed (503 with `x-ballast-shed`), the gateway answers part of the traffic with 503
   * itself, before reading the body, with probability `(requests − k × accepted) /
   * (requests + 1)` over the last `windowMs`, once at least `minRequests` were seen in
   * it (below that, a burst of requests still in flight would swing the probability).
   * `false` disables it.
   * @default { k: 2, windowMs: 10000, minRequests: 50 }
   */
  throttle?: { k?: number; windowMs?: number; minRequests?: number } | false;
  /** Requests the gateway holds at once; beyond it, 503. @default 2048 */
  maxInflight?: number;
  /** Largest request body, bytes (the gateway buffers bodies so a retry can resend them). @default 10_485_760 */
  maxBodyBytes?: number;
  /** Prometheus registry. @default a new registry */
  registry?: Registry;
  /**
   * Logger (pino): one `info` line per proxied request (request id, upstream, status,
   * latency) and a `warn` line per upstream failure, through a child carrying `service: 'gateway'`.
   * @default JSON lines on stderr at level `warn`
   */
  logger?: Logger;
}

/** A running gateway. */
export interface Gateway extends AsyncDisposable {
  readonly app: Hono;
  /** The operational listener's app: `/healthz`, `/readyz`, `/metrics`, `/gateway/stats`. */
  readonly ops: Hono<AppEnv>;
  readonly balancer: LoadBalancer;
  readonly monitor: HeartbeatMonitor;
  readonly registry: Registry;
  breaker(id: string): CircuitBreaker<IncomingMessage> | undefined;
  /** Stops probing, closes breakers, balancer and limiter. */
  close(): Promise<void>;
}

/** What one attempt produced: the upstream's response and which upstream it was. */
interface Attempted {
  response: IncomingMessage;
  upstream: string;
}

/** The request never reached an upstream (refused, or refused by an open circuit): safe to send elsewhere. */
class NotSent extends Error {
  override readonly cause: unknown;
  readonly upstream: string;
  constructor(upstream: string, cause: unknown) {
    super(`request never reached ${upstream}`);
    this.upstream = upstream;
    this.cause = cause;
  }
}

/** Per-connection headers, plus `host`, which the upstream request sets for itself. */
const HOP_BY_HOP: readonly string[] = [...HOP_BY_HOP_HEADERS, 'host'];
/**
 * The gateway: a Hono reverse proxy over the API servers.
 *
 * - @ballast/load-balancer picks an upstream (P2C by default);
 * - @ballast/failure-detector probes each upstream's `/healthz` and, through a phi
 *   accrual detector, marks silent ones down in the balancer (and up when they answer);
 * - @ballast/circuit-breaker wraps each upstream: one that keeps failing is cut off for
 *   `breakerResetMs`;
 * - @ballast/retry resends a request to another upstream only when it never reached one
 *   (connection refused, circuit open), under a ratio retry budget;
 * - @ballast/backpressure caps the requests held at the door.
 */
export function createGateway(options: GatewayOptions): Gateway {
  const strategyName = oneOf('strategy', options.strategy ?? 'p2c', STRATEGIES);
  const healthIntervalMs = durationMs('healthIntervalMs', options.healthIntervalMs ?? 500, { min: 10 });
  const upstreamTimeoutMs = durationMs('upstreamTimeoutMs', options.upstreamTimeoutMs ?? 60_000, { min: 1 });
  const bodyLimits = resolveBodyLimits({ maxBodyBytes: options.maxBodyBytes });
  const log = (options.logger ?? createLogger()).child({ service: 'gateway' });
  const registry = options.registry ?? new Registry();

  const balancer = new LoadBalancer({
    strategy: strategyByName(strategyName),
    endpoints: options.upstreams.map((u) => ({ id: u.id, address: u.url })),
    // Ejections here are short: the failure detector handles dead servers, this handles flaky ones.
    outlierDetection: {
      consecutiveFailures: integer('ejectAfterFailures', options.ejectAfterFailures ?? 5, { min: 0 }),
      failureRate: 0,
      baseEjectionTimeMs: 2000,
      maxEjectionPercent: 34,
    },
  });
  const monitor = new HeartbeatMonitor({
    detector: () =>
      new PhiAccrualDetector({
        threshold: options.phiThreshold ?? 8,
        acceptableHeartbeatPauseMs: options.acceptablePauseMs ?? 1000,
        firstHeartbeatEstimateMs: healthIntervalMs,
      }),
    deadAfterMs: 5000,
  });
  const connection: BalancerConnection = connectBalancer(monitor, balancer);
  const poller = new HealthPoller({
    monitor,
    intervalMs: healthIntervalMs,
    targets: options.upstreams.map((u) => ({ id: u.id, url: `${u.url}/healthz` })),
  });
  const breakers = new Map<string, CircuitBreaker<IncomingMessage>>();
  for (const u of options.upstreams) {
    const breaker = new CircuitBreaker<IncomingMessage>({
      name: u.id,
      timeout: upstreamTimeoutMs,
      resetTimeout: durationMs('breakerResetMs', options.breakerResetMs ?? 5000, { min: 1 }),
      volumeThreshold: 10,
      errorThresholdPercentage: 50,
      // A 503 is an upstream shedding load on purpose, not failing: it must not open the circuit.
      isFailure: (response) => response.statusCode === 500 || response.statusCode === 502,
    });
    breakers.set(u.id, breaker);
  }
  const budget = new RatioBudget({ ratio: options.retryBudgetRatio ?? 0.2, minRetriesPerSec: options.minRetriesPerSec ?? 5 });
  const retry = new RetryPolicy<Attempted>({
    maxAttempts: integer('maxAttempts', options.maxAttempts ?? 3, { min: 1 }),
    backoff: constantBackoff({ delayMs: 0 }),
    retryOn: (outcome) => !outcome.ok && outcome.error instanceof NotSent,
    delayHint: false,
    deadlineMs: Number.POSITIVE_INFINITY,
    budget,
  });
  const throttle =
    options.throttle === false
      ? undefined
      : new AdaptiveThrottle({
          name: 'gateway',
          k: options.throttle?.k ?? 2,
          windowMs: options.throttle?.windowMs ?? 10_000,
          buckets: 10,
        });
  const throttleMinRequests =
    options.throttle === false ? 0 : integer('throttle.minRequests', options.throttle?.minRequests ?? 50, { min: 0 });
  const limiter = new ConcurrencyLimiter({
    name: 'gateway',
    limit: integer('maxInflight', options.maxInflight ?? 2048, { min: 1 }),
    maxQueue: 0,
  });

  const requests = new Counter({
    name: 'ballast_gateway_requests_total',
    help: 'Requests by upstream and status',
    labelNames: ['upstream', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'ballast_gateway_request_seconds',
    help: 'Time to response headers',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'ballast_gateway_retries_total',
    help: 'Requests resent to another upstream',
    registers: [registry],
  });
  retry.on('retry', () => retries.inc());
  const shedLocally = new Counter({
    name: 'ballast_gateway_throttled_total',
    help: 'Requests turned away by adaptive throttling before reaching an API server',
    registers: [registry],
  });
  new Gauge({
    name: 'ballast_gateway_upstream_up',
    help: '1 while an upstream is in rotation (not down, ejected or draining)',
    labelNames: ['upstream'],
    registers: [registry],
    collect() {
      for (const e of balancer.stats().endpoints) this.set({ upstream: e.id }, e.state === 'healthy' || e.state === 'warming' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ballast_gateway_circuit_open',
    help: '1 while an upstream circuit is open or half-open',
    labelNames: ['upstream'],
    registers: [registry],
    collect() {
      for (const [id, b] of breakers) this.set({ upstream: id }, b.state === 'closed' ? 0 : 1);
    },
  });

  /** One attempt: pick an upstream not tried yet, send through its breaker. */
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  /** One attempt: pick an upstream not tried yet, send through its breaker. */
  const attempt = async (
    method: string,
    path: string,
    headers: Record<string, string | string[] | undefined>,
    body: Buffer | undefined,
    tried: Set<string>,
    signal: AbortSignal,
  ): Promise<Attempted> => {
    let handle: PickHandle = balancer.pick();
    for (let i = 0; i < 3 && tried.has(handle.endpoint.id) && tried.size < balancer.size; i++) {
      handle.done({ ok: true, cancelled: true });
      handle = balancer.pick();
    }
    const id = handle.endpoint.id;
    tried.add(id);
    const breaker = breakers.get(id) as CircuitBreaker<IncomingMessage>;
    handle.start();
    try {
      const response = await breaker.execute(
        ({ signal: callSignal }) =>
          send(agent, `${handle.endpoint.address}${path}`, method, headers, body, AbortSignal.any([callSignal, signal])),
        { signal },
      );
      const status = response.statusCode ?? 502;
      handle.done({ ok: status !== 500 && status !== 502 });
      return { response, upstream: id };
    } catch (error) {
      const aborted = signal.aborted;
      handle.done({ ok: false, cancelled: aborted });
      if (!aborted && (isBrokenCircuitError(error) || neverConnected(error))) throw withoutStack(() => new NotSent(id, error));
      throw error;
    }
  };

  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true, service: 'gateway' }));
  app.get('/readyz', (c) => {
    const up = balancer.stats().endpoints.filter((e) => e.state === 'healthy' || e.state === 'warming').length;
    return c.json({ ready: up > 0, upstreamsUp: up, upstreams: balancer.size }, up > 0 ? 200 : 503);
  });
  app.get('/metrics', async (c) => c.text(await registry.metrics(), 200, { 'content-type': registry.contentType }));
  app.get('/gateway/stats', (c) =>
    c.json({
      strategy: balancer.strategy,
      balancer: balancer.stats(),
      breakers: Object.fromEntries([...breakers].map(([id, b]) => [id, b.state])),
      retry: retry.stats(),
      budget: budget.stats(),
      throttle: throttle?.stats(),
      monitor: monitor.stats(),
    }),
  );

  app.all('*', async (c) => {
    const started = performance.now();
    const request = c.req.raw;
    const incoming = nodeRequest(c);
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    const requestId = requestIdFrom(incoming ? incoming.headers['x-request-id'] : request.headers.get('x-request-id'));
    const permit = limiter.tryAcquire();
    if (!permit) return problem(503, 'ERR_BALLAST_OVERLOADED', 'the gateway is at its request limit', requestId, { 'retry-after': '1' });
    const throttled = throttle !== undefined && request.method !== 'GET' && request.method !== 'HEAD';
    if (throttled && !throttle.tryAcquire() && throttle.stats().requests >= throttleMinRequests) {
      permit.release();
      shedLocally.inc();
      return problem(
        503,
        'ERR_BALLAST_THROTTLED',
        'the API servers are shedding load; the gateway turned this request away early',
        requestId,
        {
          'retry-after': '1',
        },
      );
    }
    let recorded = !throttled;
    const record = (accepted: boolean): void => {
      if (recorded) return;
      recorded = true;
      throttle?.record(accepted);
    };
    try {
      const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await readBody(c, bodyLimits);
      const headers: Record<string, string | string[] | undefined> = {};
      if (incoming) {
        for (const [name, value] of Object.entries(incoming.headers)) if (!HOP_BY_HOP.includes(name)) headers[name] = value;
      } else {
        request.headers.forEach((value, name) => {
          if (!HOP_BY_HOP.includes(name)) headers[name] = value;
        });
      }
      headers['x-request-id'] = requestId;
      if (body !== undefined) headers['content-length'] = String(body.byteLength);
      const url = new URL(request.url);
      const tried = new Set<string>();
      const { response, upstream } = await retry.execute(
        ({ signal }) => attempt(request.method, url.pathname + url.search, headers, body, tried, signal),
        { signal: clientSignal(c) },
      );
      const status = response.statusCode ?? 502;
      // Only a deliberate shed is overload; a 503 while the queue fails over is not.
      record(!(status === 429 || (status === 503 && response.headers[SHED_HEADER] !== undefined)));
      const ms = performance.now() - started;
      latency.observe(ms / 1000);
      requests.inc({ upstream, status });
      log.info({ requestId, method: request.method, path: url.pathname, upstream, status, ms: Math.round(ms * 10) / 10 }, 'request');
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(response.headers))
        if (value !== undefined && !HOP_BY_HOP.includes(name)) out[name] = value;
      out['x-upstream'] = upstream;
      out['x-request-id'] = requestId;
      if (outgoing) {
        // Under Node, pipe the upstream's bytes straight to the client: no web streams, no copies.
        outgoing.writeHead(status, out);
        outgoing.once('close', () => response.destroy());
        response.pipe(outgoing);
        return RESPONSE_ALREADY_SENT;
      }
      const webHeaders = new Headers();
      for (const [name, value] of Object.entries(out)) for (const v of Array.isArray(value) ? value : [value]) webHeaders.append(name, v);
      return new Response(Readable.toWeb(response) as ReadableStream<Uint8Array>, { status, headers: webHeaders });
    } catch (error) {
      const e = unwrap(error);
      if (e instanceof HttpError) return problem(e.status, e.code, e.message, requestId);
      requests.inc({ upstream: 'none', status: statusOf(e) });
      if (!(e instanceof NotSent) && !isNoEndpointAvailableError(e) && !isShedError(e)) {
        log.warn({ requestId, err: e }, 'upstream failure');
      }
      return failure(e, requestId);
    } finally {
      record(true); // no answer from an API server: not an overload signal
      permit.release();
    }
  });

  const close = async (): Promise<void> => {
    await poller.close();
    connection.close();
    monitor.close();
    for (const b of breakers.values()) b.close();
    retry.close();
    budget.close();
    limiter.close();
    throttle?.close();
    balancer.close();
    agent.destroy();
  };
  const ops = operationalApp({
    service: 'gateway',
    registry,
    ready: () => {
      const up = balancer.stats().endpoints.filter((e) => e.state === 'healthy' || e.state === 'warming').length;
      return { ready: up > 0, upstreamsUp: up, upstreams: balancer.size };
    },
  });
  return { app, ops, balancer, monitor, registry, breaker: (id) => breakers.get(id), close, [Symbol.asyncDispose]: close };
}

/** True when the error says the connection was never made, so the request was never sent. */
function neverConnected(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT') return true;
  }
  return false;
}

function unwrap(error: unknown): unknown {
  // The retry policy gives up with its own error; the last attempt's error is what happened.
  if (isRetryError(error) && !isRetryBudgetExhaustedError(error)) return (error as { cause?: unknown }).cause ?? error;
  return error;
}

function statusOf(error: unknown): number {
  if (isNoEndpointAvailableError(error) || isShedError(error) || error instanceof BrokenCircuitError || isBrokenCircuitError(error))
    return 503;
  if (error instanceof NotSent) return isBrokenCircuitError(error.cause) ? 503 : 502;
  if (isTimeoutError(error)) return 504;
  if (isRetryBudgetExhaustedError(error)) return 502;
  return 502;
}

function failure(error: unknown, requestId: string): Response {
  const status = statusOf(error);
  if (isNoEndpointAvailableError(error)) return problem(503, error.code, error.message, requestId, { 'retry-after': '1' });
  if (error instanceof NotSent) {
    const inner = error.cause;
    if (isBrokenCircuitError(inner)) {
      return problem(503, inner.code, `every upstream tried is cut off: ${inner.message}`, requestId, {
        'retry-after': String(Math.max(1, Math.ceil(inner.retryAfterMs / 1000))),
      });
    }
    return problem(502, 'ERR_BALLAST_UPSTREAM_UNREACHABLE', `no upstream could be reached (last: ${error.upstream})`, requestId, {
      'retry-after': '1',
    });
  }
  if (isRetryBudgetExhaustedError(error))
    return problem(502, error.code, 'upstream unreachable and the retry budget is spent', requestId, { 'retry-after': '1' });
  if (isTimeoutError(error)) return problem(504, 'ERR_BALLAST_UPSTREAM_TIMEOUT', 'the upstream did not answer in time', requestId);
  return problem(
    status,
    'ERR_BALLAST_UPSTREAM',
    `the upstream failed: ${error instanceof Error ? error.message : String(error)}`,
    requestId,
  );
}

function problem(status: number, code: string, message: string, requestId: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status,
    headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...headers },
  });
}

/** Sends one request upstream with Node's HTTP client; resolves at the response headers. */
function send(
  agent: Agent,
  url: string,
  method: string,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer | undefined,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent, signal }, resolve);
    req.once('error', reject);
    req.end(body && body.byteLength > 0 ? body : undefined);
  });
}
