import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  durationMs,
  errorBody,
  func,
  InvalidOptionError,
  integer,
  isBallastError,
  nonEmptyString,
  sendErrorAnswer,
  TimeoutError,
} from '@ballast/common';
import { Agent, type Dispatcher } from 'undici';
import type { LoadBalancer } from './balancer.ts';
import { UpstreamError } from './forward.ts';
import { createForwarding, endToEndHeaderList, type ForwardingOptions, type NodeHeaders, type OutgoingHeaders } from './forwarding.ts';
import { proxyRejection, UPSTREAM_FAILED } from './rejection.ts';
import { foreignHost, foreignHostMessage } from './request-target.ts';
import type { Endpoint, PickHandle } from './types.ts';

/** What an upstream answered, at its response headers; the body streams to the client once the attempt is accepted. */
export interface UpstreamResponse {
  readonly endpoint: Endpoint;
  readonly status: number;
  readonly statusText: string;
  /** Response headers as received (lower-case names); hop-by-hop ones are dropped when they are sent on. */
  readonly headers: NodeHeaders;
}

/** One attempt, as seen by the {@link NodeProxyOptions.attempt} hook. */
export interface AttemptContext {
  readonly request: IncomingMessage;
  /** The upstream the balancer picked for this attempt. */
  readonly endpoint: Endpoint;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Aborted when the client goes away or the attempt's time runs out. */
  readonly signal: AbortSignal;
}

/**
 * Runs one attempt: call `send()` at most once (for example inside a circuit breaker for
 * `context.endpoint`) and resolve with what it resolved with. Rejecting without calling
 * `send()` means the request never reached an upstream, so it may be retried elsewhere.
 * Aborting the `signal` passed to `send()` aborts the upstream request.
 */
export type AttemptHook = (context: AttemptContext, send: (signal?: AbortSignal) => Promise<UpstreamResponse>) => Promise<UpstreamResponse>;

/** A retry budget: `tryAcquire()` before every retry (`RatioBudget` from @ballast/retry fits). */
export interface RetryAllowance {
  /** A request is sending its first attempt. */
  onRequest?(): void;
  /** `true` allows one retry and counts it. */
  tryAcquire(): boolean;
}

/** Options of {@link nodeProxy}. */
export interface NodeProxyOptions extends ForwardingOptions {
  /** The balancer whose endpoint addresses are the upstream base URLs (`http://10.0.0.5:8080`). */
  balancer: LoadBalancer;
  /**
   * Time allowed for the upstream's response headers, ms, from the first attempt (retries
   * share what is left); the body may stream for longer. A function derives it per request
   * (from a deadline header, say); a result ≤ 0 answers 504 without contacting an upstream.
   * @default 30_000
   */
  timeoutMs?: number | ((request: IncomingMessage) => number);
  /** Longest pause between two chunks of an upstream's response body, ms; 0 disables. @default 300_000 */
  bodyTimeoutMs?: number;
  /** Time allowed to open a connection to an upstream, ms. @default 10_000 */
  connectTimeoutMs?: number;
  /**
   * Attempts per request, the first included. A request is retried, on another upstream
   * where there is one, only when it never reached an upstream: the connection could not
   * be opened, or the `attempt` hook refused it without sending. Nothing of its body has
   * been read then, so bodies stream through and a retry still sends them whole.
   * @default 1
   */
  maxAttempts?: number;
  /** Caps retries across requests (see {@link RetryAllowance}). @default none (every allowed attempt is made) */
  retryBudget?: RetryAllowance;
  /** Wraps each attempt in per-upstream policies (circuit breaker, limiter). @default none */
  attempt?: AttemptHook;
  /** Response header carrying the upstream's load (0–1), fed to `done({ load })`; `false` to ignore. @default 'x-ballast-load' */
  loadHeader?: string | false;
  /** Which responses count as the upstream failing (outlier detection, error rate). @default status >= 500 */
  isFailure?: (response: UpstreamResponse) => boolean;
  /** Affinity key for `hashAffinity()`, e.g. the client address. @default none */
  key?: (request: IncomingMessage) => string | undefined;
  /** Path and query sent upstream. @default `request.url` */
  path?: (request: IncomingMessage) => string;
  /**
   * The request's body when the caller has read it already (an edge that buffers bodies
   * so slow uploads never reach an upstream): sent whole on every attempt instead of being
   * streamed from the request; `undefined` streams it. @default streamed from the request
   */
  body?: (request: IncomingMessage) => Uint8Array | undefined;
  /**
   * Answers a request that could not be proxied; the default writes the JSON error bodies
   * of the README (503 no endpoint, 502 unreachable, 504 timeout). Not called when the
   * client has gone away, nor once the response head was sent (the response is cut off).
   */
  onRejected?: (error: unknown, request: IncomingMessage, response: ServerResponse) => void;
  /**
   * The undici dispatcher that carries upstream requests.
   * @default an undici `Agent` with keep-alive connection pools, closed by `close()`
   */
  dispatcher?: Dispatcher;
  /** Most connections per upstream (default dispatcher only). @default unlimited */
  connectionsPerUpstream?: number;
  /** How long an idle upstream connection is kept, ms (default dispatcher only); keep it below the upstreams' own. @default 4_000 */
  keepAliveTimeoutMs?: number;
}

/** A Node `(req, res)` request handler that proxies through the balancer. */
export interface NodeProxy extends AsyncDisposable {
  /** Proxies one request; resolves when the exchange is over (never rejects). */
  (request: IncomingMessage, response: ServerResponse): Promise<void>;
  /** Closes the default dispatcher's connections once requests in flight finish. Idempotent. */
  close(): Promise<void>;
}

interface Resolved {
  balancer: LoadBalancer;
  dispatcher: Dispatcher;
  timeoutMs: number | ((request: IncomingMessage) => number);
  bodyTimeoutMs: number;
  maxAttempts: number;
  retryBudget: RetryAllowance | undefined;
  attempt: AttemptHook | undefined;
  loadHeader: string | false;
  isFailure: ((response: UpstreamResponse) => boolean) | undefined;
  key: ((request: IncomingMessage) => string | undefined) | undefined;
  path: ((request: IncomingMessage) => string) | undefined;
  body: ((request: IncomingMessage) => Uint8Array | undefined) | undefined;
  onRejected: (error: unknown, request: IncomingMessage, response: ServerResponse) => void;
  forwarding: ReturnType<typeof createForwarding>;
}

/** The client went away: the upstream request is aborted and the pick released as cancelled. */
class ClientGoneError extends Error {
  constructor() {
    super('the client went away');
    this.name = 'ClientGoneError';
  }
}

/**
 * A reverse proxy for `node:http` (or any framework that hands out Node's `req`/`res`):
 * pooled keep-alive upstream connections through undici, bodies streamed both ways,
 * headers handled once (see {@link forwardingHeaders}), no web `Request`/`Response` on the way.
 * Same balancing, outlier accounting and error answers as the Hono proxy; the pick is
 * held until the response body has been sent. Retries only requests that never reached
 * an upstream (`maxAttempts`), and an `attempt` hook wraps per-upstream policies.
 *
 * @throws {InvalidOptionError} when `balancer` is missing or another option is invalid.
 * @example
 * ```ts
 * const proxy = nodeProxy({ balancer, timeoutMs: 5_000, trustedProxies: ['10.0.0.0/8'] });
 * http.createServer(proxy).listen(8080);
 * ```
 */
export function nodeProxy(options: NodeProxyOptions): NodeProxy {
  const resolved = resolve(options);
  const owned = options.dispatcher === undefined ? resolved.dispatcher : undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= owned ? owned.close().then(() => undefined) : Promise.resolve();
    return closing;
  };
  const proxy = ((request: IncomingMessage, response: ServerResponse) =>
    new Promise<void>((done) => {
      new Exchange(resolved, request, response, done).start();
    })) as NodeProxy;
  proxy.close = close;
  proxy[Symbol.asyncDispose] = close;
  return proxy;
}

function resolve(options: NodeProxyOptions): Resolved {
  if (typeof options?.balancer?.pick !== 'function') throw new InvalidOptionError('balancer', 'a LoadBalancer', options?.balancer);
  const optionalFunc = <T>(name: string, value: unknown): T | undefined =>
    value === undefined ? undefined : (func(name, value) as unknown as T);
  const timeoutMs =
    typeof options.timeoutMs === 'function' ? options.timeoutMs : durationMs('timeoutMs', options.timeoutMs ?? 30_000, { min: 1 });
  const budget = options.retryBudget;
  if (budget !== undefined && typeof budget?.tryAcquire !== 'function') {
    throw new InvalidOptionError('retryBudget', 'an object with tryAcquire()', budget);
  }
  if (options.dispatcher !== undefined && typeof options.dispatcher?.dispatch !== 'function') {
    throw new InvalidOptionError('dispatcher', 'an undici Dispatcher', options.dispatcher);
  }
  const connections =
    options.connectionsPerUpstream === undefined ? null : integer('connectionsPerUpstream', options.connectionsPerUpstream, { min: 1 });
  const keepAliveTimeout = durationMs('keepAliveTimeoutMs', options.keepAliveTimeoutMs ?? 4_000, { min: 1 });
  const connectTimeout = durationMs('connectTimeoutMs', options.connectTimeoutMs ?? 10_000, { min: 1 });
  return {
    balancer: options.balancer,
    timeoutMs,
    bodyTimeoutMs: durationMs('bodyTimeoutMs', options.bodyTimeoutMs ?? 300_000),
    maxAttempts: integer('maxAttempts', options.maxAttempts ?? 1, { min: 1 }),
    retryBudget: budget,
    attempt: optionalFunc('attempt', options.attempt),
    loadHeader: options.loadHeader === false ? false : nonEmptyString('loadHeader', options.loadHeader ?? 'x-ballast-load').toLowerCase(),
    isFailure: optionalFunc('isFailure', options.isFailure),
    key: optionalFunc('key', options.key),
    path: optionalFunc('path', options.path),
    body: optionalFunc('body', options.body),
    onRejected: optionalFunc('onRejected', options.onRejected) ?? rejectWithJson,
    forwarding: createForwarding(options),
    dispatcher:
      options.dispatcher ??
      new Agent({ connections, pipelining: 1, keepAliveTimeout, connect: { timeout: connectTimeout }, headersTimeout: 0 }),
  };
}

/** Where to send requests for one endpoint address: origin and base path, parsed once. */
const targets = new Map<string, { origin: string; base: string }>();
function target(address: string): { origin: string; base: string } {
  let t = targets.get(address);
  if (!t) {
    const url = new URL(address);
    t = { origin: url.origin, base: url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '') };
    if (targets.size > 10_000) targets.clear();
    targets.set(address, t);
  }
  return t;
}

/** One client request, through one or more attempts. */
class Exchange {
  readonly #o: Resolved;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #done: () => void;
  #headers: OutgoingHeaders | undefined;
  #path = '';
  #hasBody = false;
  #buffered: Uint8Array | undefined;
  #deadline = 0;
  /** The time allowed for response headers, ms (for error messages). */
  timeoutMs = 0;
  #attempts = 0;
  #current: Attempt | undefined;
  #tried: Set<string> | undefined;
  #gone = false;
  #over = false;
  /** Set once an attempt's request started on an upstream socket: its body is being read. */
  #bodyTaken = false;

  constructor(o: Resolved, req: IncomingMessage, res: ServerResponse, done: () => void) {
    this.#o = o;
    this.#req = req;
    this.#res = res;
    this.#done = done;
  }

  start(): void {
    const req = this.#req;
    this.#res.on('close', this.#onClose);
    const timeout = typeof this.#o.timeoutMs === 'number' ? this.#o.timeoutMs : this.#derivedTimeout();
    if (timeout === undefined) return;
    this.timeoutMs = timeout;
    this.#deadline = performance.now() + timeout;
    const socket = req.socket;
    const headers = this.#o.forwarding.headers(req.headers, {
      address: socket.remoteAddress,
      port: socket.remotePort,
      protocol: (socket as { encrypted?: boolean }).encrypted ? 'https' : 'http',
    });
    this.#headers = headers;
    const path = originForm(this.#o.path ? this.#o.path(req) : (req.url ?? '/'), req.headers.host);
    if (typeof path !== 'string') {
      this.#badTarget(path.message);
      return;
    }
    this.#path = path;
    this.#buffered = this.#o.body?.(req);
    if (this.#buffered !== undefined) headers['content-length'] = String(this.#buffered.byteLength);
    this.#hasBody =
      this.#buffered !== undefined
        ? this.#buffered.byteLength > 0
        : req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
    this.#o.retryBudget?.onRequest?.();
    this.#next();
  }

  /** A request target that is not a path (`*`, an authority) or names another host: nothing to forward. */
  #badTarget(message: string): void {
    const text = JSON.stringify(errorBody('ERR_BALLAST_BAD_REQUEST', message));
    if (!this.#res.headersSent) {
      this.#res.writeHead(400, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
    }
    this.end();
  }

  #derivedTimeout(): number | undefined {
    let ms: number;
    try {
      ms = (this.#o.timeoutMs as (r: IncomingMessage) => number)(this.#req);
    } catch (error) {
      this.#reject(error);
      return undefined;
    }
    if (typeof ms !== 'number' || Number.isNaN(ms)) {
      this.#reject(new InvalidOptionError('timeoutMs()', 'a number of milliseconds', ms));
      return undefined;
    }
    if (ms <= 0) {
      this.#reject(new TimeoutError(0, 'the request had no time left for an upstream'));
      return undefined;
    }
    return Math.min(ms, 2_147_483_647);
  }

  /** Picks an upstream and starts an attempt on it. */
  #next(): void {
    const o = this.#o;
    let handle: PickHandle;
    try {
      const key = o.key?.(this.#req);
      handle = o.balancer.pick(key === undefined ? undefined : { key });
      if (this.#tried) {
        // A retry: prefer an upstream not tried yet.
        for (let i = 0; i < 3 && this.#tried.has(handle.endpoint.id) && this.#tried.size < o.balancer.size; i++) {
          handle.done({ ok: true, cancelled: true });
          handle = o.balancer.pick(key === undefined ? undefined : { key });
        }
      }
    } catch (error) {
      this.#reject(error);
      return;
    }
    this.#attempts++;
    const attempt = new Attempt(this, handle, this.#deadline);
    this.#current = attempt;
    if (o.attempt) this.#hooked(attempt, o.attempt);
    else attempt.send(undefined);
  }

  #hooked(attempt: Attempt, hook: AttemptHook): void {
    let sent: Promise<UpstreamResponse> | undefined;
    const context: AttemptContext = {
      request: this.#req,
      endpoint: attempt.handle.endpoint,
      attempt: this.#attempts,
      signal: attempt.signal(),
    };
    const send = (signal?: AbortSignal): Promise<UpstreamResponse> => {
      if (sent) return Promise.reject(new Error('send() may be called once per attempt'));
      sent = attempt.sendForHook(signal);
      return sent;
    };
    let result: Promise<UpstreamResponse>;
    try {
      result = Promise.resolve(hook(context, send));
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      () => (attempt.response ? this.commit(attempt) : this.failed(attempt, new Error('the attempt hook resolved without send()'))),
      (error: unknown) => this.failed(attempt, error),
    );
  }

  /** The body for one attempt: read from the client only once the upstream socket takes it. */
  body(): AsyncIterable<Buffer> | Uint8Array | null {
    if (!this.#hasBody) return null;
    // A buffered body can be sent again: it leaves a retry possible.
    if (this.#buffered !== undefined) return this.#buffered;
    return this.#bodyOnce();
  }

  async *#bodyOnce(): AsyncGenerator<Buffer> {
    this.#bodyTaken = true;
    // destroyOnReturn: false — an upstream failing mid-upload must not cut the client off before it is answered.
    for await (const chunk of this.#req.iterator({ destroyOnReturn: false })) yield chunk as Buffer;
  }

  dispatch(attempt: Attempt): void {
    const endpoint = attempt.handle.endpoint;
    const { origin, base } = target(endpoint.address);
    this.#o.dispatcher.dispatch(
      {
        origin,
        path: base + this.#path,
        method: this.#req.method as Dispatcher.HttpMethod,
        headers: this.#headers,
        body: this.body() as never,
        headersTimeout: 0,
        bodyTimeout: this.#o.bodyTimeoutMs,
      },
      attempt,
    );
  }

  /** Report for the balancer from the response head. */
  report(response: UpstreamResponse, handle: PickHandle): Report {
    const o = this.#o;
    const ok = o.isFailure ? !o.isFailure(response) : response.status < 500;
    return { ok, latencyMs: handle.elapsedMs(), load: readLoad(response.headers, o.loadHeader) };
  }

  /** The attempt's response is the answer: send its head and stream its body. */
  commit(attempt: Attempt): void {
    if (this.#over || attempt !== this.#current) {
      attempt.abort(new Error('superseded'));
      return;
    }
    if (this.#gone) {
      attempt.abort(new ClientGoneError());
      return;
    }
    const response = attempt.response!;
    const res = this.#res;
    try {
      // A flat list: writeHead() sends it without building another headers object.
      const headers = endToEndHeaderList(response.headers);
      if (response.statusText) res.writeHead(response.status, response.statusText, headers);
      else res.writeHead(response.status, headers);
    } catch (error) {
      // Headers Node refuses to send (an invalid value from the upstream).
      attempt.abort(error as Error);
      attempt.finish(FAILED);
      this.#reject(new UpstreamError('unreachable', attempt.handle.endpoint, error));
      return;
    }
    attempt.stream(res);
  }

  /** The response went out whole, or the exchange ended otherwise. */
  end(): void {
    if (this.#over) return;
    this.#over = true;
    this.#res.off('close', this.#onClose);
    this.#done();
  }

  /** An attempt failed before its response was committed. */
  failed(attempt: Attempt, error: unknown): void {
    if (attempt !== this.#current || this.#over) return;
    attempt.abort(error instanceof Error ? error : new Error(String(error)));
    // The client's upload broke off: its fault, not the upstream's.
    if (this.#gone || (this.#req.destroyed && !this.#req.complete)) {
      this.#gone = true;
      attempt.finish(CANCELLED);
      this.end();
      return;
    }
    attempt.finish(FAILED);
    const timedOut = error instanceof TimeoutError || (isBallastError(error) && error.code === 'ERR_BALLAST_TIMEOUT');
    const cause = attempt.transportError ?? error;
    const neverReached = !attempt.reached && !this.#bodyTaken && !timedOut;
    if (
      neverReached &&
      this.#attempts < this.#o.maxAttempts &&
      this.#deadline > performance.now() &&
      (this.#o.retryBudget?.tryAcquire() ?? true)
    ) {
      (this.#tried ??= new Set()).add(attempt.handle.endpoint.id);
      this.#next();
      return;
    }
    // An error the hook raised itself (an open circuit, say) is answered as it is.
    const fromHook = this.#o.attempt !== undefined && error !== attempt.hookError;
    if (fromHook && !timedOut) {
      this.#reject(error);
      return;
    }
    this.#reject(new UpstreamError(timedOut ? 'timeout' : 'unreachable', attempt.handle.endpoint, cause));
  }

  #reject(error: unknown): void {
    if (this.#over) return;
    const res = this.#res;
    if (!this.#gone && !res.headersSent) {
      // A body still arriving from the client is not worth reading: answer, then close.
      if (this.#hasBody && !this.#req.complete) res.shouldKeepAlive = false;
      try {
        this.#o.onRejected(error, this.#req, res);
      } catch {
        if (!res.headersSent) res.writeHead(500).end();
      }
    }
    this.end();
  }

  #onClose = (): void => {
    if (this.#res.writableFinished) return;
    this.#gone = true;
    const attempt = this.#current;
    if (attempt && !attempt.settled) {
      attempt.abort(new ClientGoneError());
      attempt.finish(CANCELLED);
    }
    this.end();
  };
}

type Report = { ok: boolean; latencyMs?: number; load?: number | undefined; cancelled?: boolean };
type Outcome = { readonly ok: boolean; readonly cancelled?: boolean };
const SUCCEEDED: Outcome = Object.freeze({ ok: true });
const FAILED: Outcome = Object.freeze({ ok: false });
const CANCELLED: Outcome = Object.freeze({ ok: false, cancelled: true });

/** One request to one upstream: an undici dispatch handler. */
class Attempt implements Dispatcher.DispatchHandler {
  readonly handle: PickHandle;
  readonly #x: Exchange;
  #controller: Dispatcher.DispatchController | undefined;
  #abortReason: Error | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the request's time for response headers runs out, on `performance.now()`. */
  readonly #deadline: number;
  #signal: AbortController | undefined;
  #hookSignal: AbortSignal | undefined;
  #res: ServerResponse | undefined;
  #report: Report | undefined;
  #deferred: { resolve: (r: UpstreamResponse) => void; reject: (e: unknown) => void } | undefined;
  /** The request started on a connected upstream socket. */
  reached = false;
  /** The pick was released. */
  settled = false;
  response: UpstreamResponse | undefined;
  transportError: Error | undefined;
  hookError: unknown;

  constructor(exchange: Exchange, handle: PickHandle, deadline: number) {
    this.#x = exchange;
    this.handle = handle;
    this.#deadline = deadline;
  }

  /** The hook's view of the attempt: aborted with the client or the timeout. */
  signal(): AbortSignal {
    this.#signal ??= new AbortController();
    return this.#signal.signal;
  }

  send(hookSignal: AbortSignal | undefined): void {
    // Measured to the request's deadline: time the hook spent before sending counts.
    const remaining = this.#deadline - performance.now();
    if (remaining <= 0) {
      this.#fail(new TimeoutError(0, 'the request had no time left for an upstream'));
      return;
    }
    this.#timer = setTimeout(this.#onTimeout, remaining);
    if (hookSignal) {
      if (hookSignal.aborted) {
        this.#x.failed(this, hookSignal.reason);
        return;
      }
      this.#hookSignal = hookSignal;
      hookSignal.addEventListener('abort', this.#onHookAbort, { once: true });
    }
    try {
      this.#x.dispatch(this);
    } catch (error) {
      this.transportError = error as Error;
      this.#fail(error);
    }
  }

  sendForHook(signal: AbortSignal | undefined): Promise<UpstreamResponse> {
    return new Promise<UpstreamResponse>((resolve, reject) => {
      this.#deferred = { resolve, reject };
      this.send(signal);
    }).catch((error: unknown) => {
      this.hookError = error;
      throw error;
    });
  }

  #onHookAbort = (): void => {
    this.#fail(this.#hookSignal?.reason);
  };

  #onTimeout = (): void => {
    this.#timer = undefined;
    this.#fail(new TimeoutError(Math.round(this.#x.timeoutMs)));
  };

  /** Failure before the response head: to the hook's promise, or straight to the exchange. */
  #fail(error: unknown): void {
    this.#clear();
    if (this.response) return;
    if (this.#deferred) {
      const { reject } = this.#deferred;
      this.#deferred = undefined;
      this.abort(error instanceof Error ? error : new Error(String(error)));
      reject(error);
    } else {
      this.#x.failed(this, error);
    }
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#hookSignal) this.#hookSignal.removeEventListener('abort', this.#onHookAbort);
    this.#hookSignal = undefined;
  }

  abort(reason: Error): void {
    if (this.#abortReason) return;
    this.#abortReason = reason;
    this.#clear();
    this.#signal?.abort(reason);
    const controller = this.#controller;
    if (controller && !controller.aborted) controller.abort(reason);
  }

  /** Releases the pick once, with what the response head reported (latency, load) when there was one. */
  finish(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    this.#clear();
    const report = this.#report;
    if (report === undefined) {
      this.handle.done(outcome);
      return;
    }
    // The report is this attempt's own object: completed in place rather than copied.
    if (!outcome.ok) report.ok = false;
    if (outcome.cancelled !== undefined) report.cancelled = outcome.cancelled;
    this.handle.done(report);
  }

  /** Streams the body to `res` (the head is written). */
  stream(res: ServerResponse): void {
    this.#res = res;
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      for (const chunk of pending) res.write(chunk);
    }
    if (this.#ended) {
      this.#complete();
      return;
    }
    this.#controller?.resume();
  }

  /** Body chunks that arrived before the hook accepted the response. */
  #pending: Buffer[] | undefined;

  /** Waiting for the client to take more: the upstream is paused meanwhile. */
  #draining = false;

  #onDrain = (): void => {
    this.#draining = false;
    this.#res?.off('drain', this.#onDrain);
    this.#controller?.resume();
  };

  #ended = false;

  #complete(): void {
    const res = this.#res!;
    if (this.#draining) res.off('drain', this.#onDrain);
    this.finish(SUCCEEDED);
    res.end();
    this.#x.end();
  }

  // undici's dispatch handler ---------------------------------------------------------

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortReason) {
      controller.abort(this.#abortReason);
      return;
    }
    this.reached = true;
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: NodeHeaders, statusText?: string): void {
    if (status < 200 || this.#abortReason) return;
    this.#clear();
    const response: UpstreamResponse = { endpoint: this.handle.endpoint, status, statusText: statusText ?? '', headers };
    this.response = response;
    try {
      this.#report = this.#x.report(response, this.handle);
    } catch (error) {
      // A throwing isFailure hook must not leave the pick held or the upstream open.
      this.abort(error as Error);
      this.finish(CANCELLED);
      this.#x.failed(this, error);
      return;
    }
    if (this.#deferred) {
      // Hold the body until the hook has accepted the response.
      controller.pause();
      const { resolve } = this.#deferred;
      this.#deferred = undefined;
      resolve(response);
    } else {
      this.#x.commit(this);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.#res;
    if (!res) (this.#pending ??= []).push(chunk);
    else if (!res.write(chunk)) {
      controller.pause();
      if (!this.#draining) {
        this.#draining = true;
        res.on('drain', this.#onDrain);
      }
    }
  }

  onResponseEnd(): void {
    this.#ended = true;
    if (this.#res) this.#complete();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#clear();
    if (!this.response) {
      this.transportError ??= error;
      if (this.#abortReason) return;
      this.#fail(error);
      return;
    }
    const res = this.#res;
    if (this.settled) return;
    // Cut off mid-body: by the client (cancelled), or by the upstream (a failure).
    const cancelled = this.#abortReason instanceof ClientGoneError;
    this.finish(cancelled ? CANCELLED : FAILED);
    if (res) {
      if (this.#draining) res.off('drain', this.#onDrain);
      res.destroy(error);
    }
    this.#x.end();
  }
}

/**
 * The origin-form (`/path?query`) of a request target: as it is when it starts with `/`; an
 * absolute-form target (`http://host/path`) reduced to its path and query when it names the
 * host `Host` names; else why it is refused (another host, or not a path at all).
 */
function originForm(target: string, host: string | undefined): string | { message: string } {
  if (target.charCodeAt(0) === 47 /* '/' */) return target;
  let url: URL | undefined;
  try {
    if (/^https?:\/\//i.test(target)) url = new URL(target);
  } catch {
    url = undefined;
  }
  if (url === undefined) return { message: 'the request target must be a path (origin-form or absolute-form)' };
  const foreign = foreignHost(url, host ?? '');
  return foreign === undefined ? url.pathname + url.search : { message: foreignHostMessage(url, foreign) };
}

function readLoad(headers: NodeHeaders, header: string | false): number | undefined {
  if (header === false) return undefined;
  const value = headers[header];
  const raw = (Array.isArray(value) ? value[0] : value)?.toString().trim();
  // Number('') is 0: an empty header says nothing, not "idle".
  if (raw === undefined || raw === '') return undefined;
  const load = Number(raw);
  return Number.isFinite(load) ? load : undefined;
}

/**
 * The default `onRejected`: the same statuses and `{ error: { code, message } }` bodies as
 * the Hono proxy — 503 + `Retry-After` when no endpoint is available (or the attempt hook
 * reported an open circuit), 502 when the upstream could not be reached, 504 when it did
 * not answer in time, 502 for anything else.
 */
export function rejectWithJson(error: unknown, _request: IncomingMessage, response: ServerResponse): void {
  sendErrorAnswer(response, proxyRejection(error) ?? UPSTREAM_FAILED);
}

export { type NetProxy, type NetProxyOptions, type NetProxyRequest, type NetProxyStats, netProxy } from './net-proxy.ts';
