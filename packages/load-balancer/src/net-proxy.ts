import { STATUS_CODES } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { durationMs, type ErrorAnswer, func, InvalidOptionError, integer, nonEmptyString, TimeoutError } from '@ballast/common';
import type { LoadBalancer } from './balancer.ts';
import { UpstreamError } from './forward.ts';
import { createForwarding, type ForwardingOptions, type ForwardingPeer, type OutgoingHeaders } from './forwarding.ts';
import { ChunkedFraming, HeadError, type HeaderFields, parseRequestHead, parseResponseHead, type RequestHead } from './http1.ts';
import { proxyRejection, UPSTREAM_FAILED } from './rejection.ts';
import type { PickHandle } from './types.ts';

/** A request as the {@link NetProxyOptions.key} hook sees it. */
export interface NetProxyRequest {
  readonly method: string;
  /** Path and query, as received. */
  readonly target: string;
  /** Request header fields: lower-case names, repeated fields as arrays. */
  readonly headers: Readonly<HeaderFields>;
  /** The client socket's remote address. */
  readonly remoteAddress: string | undefined;
}

/** Options of {@link netProxy}. */
export interface NetProxyOptions extends ForwardingOptions {
  /** The balancer whose endpoint addresses are the upstream base URLs (`http://10.0.0.5:8080`; `http:` only). */
  balancer: LoadBalancer;
  /** Time allowed for an upstream's response head, ms, from when the request was sent. @default 30_000 */
  timeoutMs?: number;
  /** Longest pause between two reads of an upstream's response body, ms; 0 disables. @default 300_000 */
  bodyTimeoutMs?: number;
  /** Time allowed to open a connection to an upstream, ms. @default 10_000 */
  connectTimeoutMs?: number;
  /** How long an idle upstream connection is kept, ms; keep it below the upstreams' own. @default 4_000 */
  keepAliveTimeoutMs?: number;
  /**
   * Attempts per request, the first included. Only a request whose upstream connection
   * could not be opened is retried (nothing of it was sent), on another upstream where
   * there is one. @default 1
   */
  maxAttempts?: number;
  /** Time a client has to send a whole request head, ms (slow-header clients are cut off with 408). @default 60_000 */
  headersTimeoutMs?: number;
  /** Time a client has to send a whole request, head and body, ms (408). @default 300_000 */
  requestTimeoutMs?: number;
  /** How long an idle client connection is kept between requests, ms. @default 5_000 */
  clientKeepAliveTimeoutMs?: number;
  /** Largest request head, bytes; a larger one is answered 431 and the connection closed. @default 16_384 */
  maxHeaderBytes?: number;
  /** Response header carrying the upstream's load (0–1), fed to `done({ load })`; `false` to ignore. @default 'x-ballast-load' */
  loadHeader?: string | false;
  /** Which response statuses count as the upstream failing (outlier detection, error rate). @default status >= 500 */
  isFailure?: (status: number) => boolean;
  /** Affinity key for `hashAffinity()`, e.g. the client address. @default none */
  key?: (request: NetProxyRequest) => string | undefined;
}

/** A listening HTTP/1.1 reverse proxy on `node:net` (see {@link netProxy}). */
export interface NetProxy extends AsyncDisposable {
  /** The `node:net` server: listen on it, or hand it sockets. */
  readonly server: Server;
  /** Starts listening; resolves with the bound address. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Requests in flight and connections held. */
  stats(): NetProxyStats;
  /**
   * Stops accepting connections, closes idle client and upstream connections at once and
   * busy ones after their current exchange; resolves when every connection is closed. Idempotent.
   */
  close(): Promise<void>;
}

/** What {@link NetProxy.stats} reports. */
export interface NetProxyStats {
  /** Client connections open. */
  readonly clients: number;
  /** Exchanges waiting for or streaming an upstream's response. */
  readonly inFlight: number;
  /** Upstream connections idle in the pools. */
  readonly idleUpstreams: number;
  /** Requests refused before reaching an upstream (malformed, too large, too slow). */
  readonly refused: number;
}

interface Settings {
  balancer: LoadBalancer;
  timeoutMs: number;
  bodyTimeoutMs: number;
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxAttempts: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  clientKeepAliveTimeoutMs: number;
  maxHeaderBytes: number;
  loadHeader: string | false;
  isFailure: ((status: number) => boolean) | undefined;
  key: ((request: NetProxyRequest) => string | undefined) | undefined;
  forwarding: ReturnType<typeof createForwarding>;
}

function settings(options: NetProxyOptions): Settings {
  if (typeof options?.balancer?.pick !== 'function') throw new InvalidOptionError('balancer', 'a LoadBalancer', options?.balancer);
  const optional = <T>(name: string, value: unknown): T | undefined =>
    value === undefined ? undefined : (func(name, value) as unknown as T);
  return {
    balancer: options.balancer,
    timeoutMs: durationMs('timeoutMs', options.timeoutMs ?? 30_000, { min: 1 }),
    bodyTimeoutMs: durationMs('bodyTimeoutMs', options.bodyTimeoutMs ?? 300_000),
    connectTimeoutMs: durationMs('connectTimeoutMs', options.connectTimeoutMs ?? 10_000, { min: 1 }),
    keepAliveTimeoutMs: durationMs('keepAliveTimeoutMs', options.keepAliveTimeoutMs ?? 4_000, { min: 1 }),
    maxAttempts: integer('maxAttempts', options.maxAttempts ?? 1, { min: 1 }),
    headersTimeoutMs: durationMs('headersTimeoutMs', options.headersTimeoutMs ?? 60_000, { min: 1 }),
    requestTimeoutMs: durationMs('requestTimeoutMs', options.requestTimeoutMs ?? 300_000, { min: 1 }),
    clientKeepAliveTimeoutMs: durationMs('clientKeepAliveTimeoutMs', options.clientKeepAliveTimeoutMs ?? 5_000, { min: 1 }),
    maxHeaderBytes: integer('maxHeaderBytes', options.maxHeaderBytes ?? 16_384, { min: 256, max: 1_048_576 }),
    loadHeader: options.loadHeader === false ? false : nonEmptyString('loadHeader', options.loadHeader ?? 'x-ballast-load').toLowerCase(),
    isFailure: optional('isFailure', options.isFailure),
    key: optional('key', options.key),
    forwarding: createForwarding(options),
  };
}

/** The sweep period: an eighth of the shortest deadline, between 10 ms and 1 s. */
function tickMs(s: Settings): number {
  const shortest = Math.min(
    s.timeoutMs,
    s.bodyTimeoutMs > 0 ? s.bodyTimeoutMs : Number.POSITIVE_INFINITY,
    s.connectTimeoutMs,
    s.headersTimeoutMs,
    s.requestTimeoutMs,
    s.clientKeepAliveTimeoutMs,
  );
  return Math.min(1_000, Math.max(10, Math.floor(shortest / 8)));
}

/** Where one endpoint lives, parsed once. */
interface Target {
  host: string;
  port: number;
  /** Path prefix without a trailing slash. */
  base: string;
  /** The `Host` field sent upstream. */
  authority: string;
  idle: UpstreamConnection[];
}

/**
 * An HTTP/1.1 reverse proxy built on `node:net` for cost: no `node:http` server, no
 * undici, no request or response objects. The request head is parsed once, strictly
 * (malformed or ambiguous requests — conflicting `Content-Length`, `Transfer-Encoding`
 * with `Content-Length`, obs-fold, targets that are not a path — are answered 400 and the
 * connection closed, the defences request smuggling calls for); forwarding headers are set
 * as by `nodeProxy` (see `forwardingHeaders`); bodies, chunked or not, are passed on byte
 * for byte in both directions over pooled keep-alive upstream connections, their end
 * found by framing them, never by re-encoding. The balancer's `pick()` and `done()`
 * surround every exchange as in `nodeProxy` (latency and load at the response head,
 * failure by status, cancelled when the client leaves).
 *
 * Narrower than `nodeProxy`: HTTP/1.1 clients only (HTTP/1.0 is answered 505), no
 * `attempt` hook, no per-request timeouts, no TLS in either direction, no upgrades.
 *
 * @throws {InvalidOptionError} when `balancer` is missing or another option is invalid.
 * @example
 * ```ts
 * const proxy = netProxy({ balancer, timeoutMs: 5_000, trustedProxies: ['10.0.0.0/8'] });
 * await proxy.listen(8080);
 * ```
 */
export function netProxy(options: NetProxyOptions): NetProxy {
  return new NetProxyServer(settings(options));
}

class NetProxyServer implements NetProxy {
  readonly server: Server;
  readonly s: Settings;
  readonly clients = new Set<ClientConnection>();
  readonly #targets = new Map<string, Target>();
  readonly #sweeper: ReturnType<typeof setInterval>;
  /** How often deadlines are checked, ms. */
  readonly tickMs: number;
  #lastIdleSweep = 0;
  inFlight = 0;
  refused = 0;
  closing = false;
  #closed: Promise<void> | undefined;

  constructor(s: Settings) {
    this.s = s;
    this.server = createServer({ noDelay: true }, (socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      this.clients.add(new ClientConnection(this, socket));
    });
    // Every deadline (client head, body and keep-alive times; upstream connect, head and body
    // times; idle pooled connections) is checked by one periodic sweep, not a timer per
    // connection re-armed on every request: a deadline fires at most an eighth of its
    // duration late (tickMs).
    this.tickMs = tickMs(s);
    this.#sweeper = setInterval(() => this.#sweep(), this.tickMs);
    this.#sweeper.unref();
  }

  listen(port: number, host?: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  stats(): NetProxyStats {
    let idle = 0;
    for (const t of this.#targets.values()) idle += t.idle.length;
    return { clients: this.clients.size, inFlight: this.inFlight, idleUpstreams: idle, refused: this.refused };
  }

  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.closing = true;
    const listening = this.server.listening;
    // The sweep runs on until the last connection is gone: busy ones still time out.
    const closed = (listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve()).then(() => {
      if (this.clients.size === 0) clearInterval(this.#sweeper);
    });
    for (const client of this.clients) client.closeWhenIdle();
    for (const t of this.#targets.values()) for (const u of t.idle.splice(0)) u.destroy();
    this.#closed = closed;
    return closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  target(address: string): Target {
    let t = this.#targets.get(address);
    if (t === undefined) {
      const url = new URL(address);
      if (url.protocol !== 'http:') throw new Error(`netProxy sends plain HTTP only, not ${url.protocol}`);
      const port = url.port === '' ? 80 : Number(url.port);
      t = {
        host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
        port,
        base: url.pathname === '/' ? '' : url.pathname.replace(/\/$/, ''),
        authority: url.host,
        idle: [],
      };
      if (this.#targets.size > 10_000) this.#targets.clear();
      this.#targets.set(address, t);
    }
    return t;
  }

  /** An idle connection to `t`, or a new one. */
  upstream(t: Target): UpstreamConnection {
    const now = performance.now();
    while (t.idle.length > 0) {
      const u = t.idle.pop()!;
      if (!u.socket.destroyed && now - u.idleSince < this.s.keepAliveTimeoutMs) return u;
      u.destroy();
    }
    return new UpstreamConnection(this, t);
  }

  release(u: UpstreamConnection): void {
    if (this.closing) {
      u.destroy();
      return;
    }
    u.idleSince = performance.now();
    u.target.idle.push(u);
  }

  #sweep(): void {
    const now = performance.now();
    for (const client of this.clients) client.check(now);
    if (this.closing && this.clients.size === 0) clearInterval(this.#sweeper);
    if (now - this.#lastIdleSweep < this.s.keepAliveTimeoutMs / 4) return;
    this.#lastIdleSweep = now;
    const limit = now - this.s.keepAliveTimeoutMs;
    for (const t of this.#targets.values()) {
      if (t.idle.length === 0) continue;
      const keep = t.idle.filter((u) => u.idleSince > limit);
      for (const u of t.idle) if (u.idleSince <= limit) u.destroy();
      t.idle = keep;
    }
  }
}

/** Where a client connection is: waiting for a request head, forwarding a body, waiting for the response, closed. */
const Phase = { Head: 0, Body: 1, Waiting: 2, Closed: 3 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** Where upstream reads land; see {@link UpstreamConnection}. */
const READ_BUFFER = Buffer.allocUnsafe(65_536);

/** One client connection: parses request heads, forwards bodies, one exchange at a time. */
class ClientConnection {
  readonly #p: NetProxyServer;
  readonly socket: Socket;
  #phase: Phase = Phase.Head;
  /** Bytes received and not yet handled (a partial head, pipelined requests). */
  #pending: Buffer | undefined;
  #exchange: Exchange | undefined;
  /** When the current phase's time runs out (performance.now() ms), checked by the server's sweep. */
  #deadline = Number.POSITIVE_INFINITY;
  #timerPhase: Phase = Phase.Head;
  /** A request head is partly received (its time runs). */
  #heading = false;
  #closeAfter = false;
  #peer: ForwardingPeer | undefined;
  #trusted: boolean | undefined;
  #fieldsHost: string | undefined;
  #fields = '';

  constructor(p: NetProxyServer, socket: Socket) {
    this.#p = p;
    this.socket = socket;
    socket.on('data', this.#onData);
    socket.on('error', noop);
    socket.on('close', this.#onClose);
    socket.on('drain', this.#onDrain);
    this.#arm(Phase.Head, p.s.clientKeepAliveTimeoutMs);
  }

  /** The connection closes after the current exchange (the client asked, or the proxy is closing). */
  get closing(): boolean {
    return this.#closeAfter;
  }

  /** The peer as forwarding headers describe it (read once: the socket's getters are not free). */
  get peer(): ForwardingPeer {
    this.#peer ??= { address: this.socket.remoteAddress, port: this.socket.remotePort, protocol: 'http' };
    return this.#peer;
  }

  /** Whether the peer is a trusted proxy (its forwarding fields are kept and extended). */
  get trusted(): boolean {
    this.#trusted ??= this.#p.s.forwarding.isTrusted(this.peer.address);
    return this.#trusted;
  }

  /** This proxy's forwarding fields for a request with `host`, formatted once per connection and Host. */
  forwardingFields(host: string): string {
    if (host !== this.#fieldsHost) {
      this.#fieldsHost = host;
      this.#fields = this.#p.s.forwarding.fields(this.peer, host);
    }
    return this.#fields;
  }

  get remoteAddress(): string | undefined {
    return this.peer.address;
  }

  closeWhenIdle(): void {
    this.#closeAfter = true;
    if (this.#exchange === undefined) this.socket.destroy();
  }

  #arm(phase: Phase, ms: number): void {
    this.#timerPhase = phase;
    this.#deadline = performance.now() + ms;
  }

  /** Called by the server's sweep: acts on a deadline that passed, here or on the exchange's upstream. */
  check(now: number): void {
    this.#exchange?.check(now);
    if (now < this.#deadline) return;
    this.#deadline = Number.POSITIVE_INFINITY;
    if (this.#phase === Phase.Closed) {
      this.socket.destroy();
      return;
    }
    if (this.#phase !== this.#timerPhase) return;
    if (this.#phase === Phase.Head && this.#exchange === undefined) {
      if (this.#heading || (this.#pending?.length ?? 0) > 0) this.refuse(new HeadError(408, 'the request head did not arrive in time'));
      else this.socket.destroy();
    } else if (this.#phase === Phase.Body) {
      this.#exchange?.clientFailed(new HeadError(408, 'the request body did not arrive in time'));
    }
  }

  #onData = (chunk: Buffer): void => {
    switch (this.#phase) {
      case Phase.Head:
        if (this.#exchange !== undefined) {
          // The previous response is still streaming: keep pipelined bytes for later.
          this.#hold(chunk);
          return;
        }
        this.#pending = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
        this.#parse();
        return;
      case Phase.Body:
        this.#exchange!.body(chunk, 0);
        return;
      case Phase.Waiting:
        this.#hold(chunk);
        return;
      case Phase.Closed:
        return;
    }
  };

  /** Pipelined bytes wait while an exchange runs; reading stops once a head's worth is held. */
  #hold(chunk: Buffer): void {
    this.#pending = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    if (this.#pending.length > this.#p.s.maxHeaderBytes) this.socket.pause();
  }

  /** Reads the next request head from the pending bytes, when it is all there. */
  #parse(): void {
    let buf = this.#pending!;
    // Empty lines before a request line are ignored (RFC 9112 §2.2).
    let start = 0;
    while (start + 1 < buf.length && buf[start] === 13 && buf[start + 1] === 10) start += 2;
    const end = buf.indexOf(HEAD_END, start);
    const max = this.#p.s.maxHeaderBytes;
    if (end === -1) {
      if (buf.length - start > max) {
        this.refuse(new HeadError(431, `the request head is larger than ${max} bytes`));
        return;
      }
      if (start > 0) this.#pending = buf.subarray(start);
      if (!this.#heading && buf.length > start) {
        this.#heading = true;
        this.#arm(Phase.Head, this.#p.s.headersTimeoutMs);
      }
      return;
    }
    if (end - start > max) {
      this.refuse(new HeadError(431, `the request head is larger than ${max} bytes`));
      return;
    }
    const text = buf.toString('latin1', start, end);
    let head: RequestHead;
    try {
      head = parseRequestHead(text);
    } catch (error) {
      this.refuse(error as HeadError);
      return;
    }
    this.#heading = false;
    buf = buf.subarray(end + 4);
    this.#pending = undefined;
    if (head.close) this.#closeAfter = true;
    const exchange = new Exchange(this.#p, this, head);
    this.#exchange = exchange;
    this.#p.inFlight++;
    if (head.contentLength !== 0) {
      this.#phase = Phase.Body;
      this.#arm(Phase.Body, this.#p.s.requestTimeoutMs);
      if (head.expectContinue) this.socket.write(CONTINUE);
    } else {
      this.#phase = Phase.Waiting;
    }
    exchange.start(buf);
  }

  /** The request body has all been read: `rest` is what followed it. */
  bodyDone(rest: Buffer | undefined): void {
    if (this.#phase !== Phase.Body) return;
    this.#phase = Phase.Waiting;
    if (rest !== undefined && rest.length > 0) this.#hold(rest);
  }

  /** Holds `rest` for the next exchange (bytes after a body-less request's head). */
  keep(rest: Buffer): void {
    if (rest.length > 0) this.#hold(rest);
  }

  /** The exchange is over; `reusable` false closes the connection. */
  exchangeDone(exchange: Exchange, reusable: boolean): void {
    if (this.#exchange !== exchange) return;
    this.#exchange = undefined;
    this.#p.inFlight--;
    if (!reusable || this.#closeAfter || this.#phase === Phase.Body) {
      this.#finish();
      return;
    }
    this.#phase = Phase.Head;
    if (this.#pending !== undefined && this.#pending.length > 0) {
      // Pipelined requests: the next one on a later tick, so a burst of them never deepens the stack.
      process.nextTick(this.#parseNext);
      return;
    }
    this.socket.resume();
    this.#arm(Phase.Head, this.#p.s.clientKeepAliveTimeoutMs);
  }

  #parseNext = (): void => {
    if (this.#phase !== Phase.Head || this.#exchange !== undefined) return;
    this.socket.resume();
    this.#parse();
  };

  /** Answers a request that never reached an upstream, then closes the connection. */
  refuse(error: HeadError): void {
    if (this.#phase === Phase.Closed) return;
    this.#p.refused++;
    const text = JSON.stringify({ error: { code: 'ERR_BALLAST_BAD_REQUEST', message: error.message } });
    this.#finish(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    );
  }

  /**
   * Ends the connection after what was written (and `last`): reads on, discarding, so the
   * client's close is seen even behind bytes it had sent, and destroys the connection if the
   * client has not closed within `clientKeepAliveTimeoutMs`.
   */
  #finish(last?: string): void {
    this.#phase = Phase.Closed;
    this.#pending = undefined;
    if (last === undefined) this.socket.end();
    else this.socket.end(last, 'latin1');
    this.socket.resume();
    this.#deadline = performance.now() + this.#p.s.clientKeepAliveTimeoutMs;
  }

  /** Sends an error answer for the current exchange; closes after it when the request body is unfinished. */
  answer(answer: ErrorAnswer, exchange: Exchange): void {
    if (this.#phase === Phase.Closed) return;
    const text = JSON.stringify(answer.body);
    let head = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n`;
    for (const name in answer.headers) head += `${name}: ${answer.headers[name]}\r\n`;
    const closing = this.#phase === Phase.Body || this.#closeAfter;
    if (closing) head += 'connection: close\r\n';
    this.socket.write(`${head}\r\n${text}`, 'utf8');
    this.exchangeDone(exchange, !closing);
  }

  /** Writes response bytes; false when the client's buffer is full. */
  write(data: Buffer | string): boolean {
    return typeof data === 'string' ? this.socket.write(data, 'latin1') : this.socket.write(data);
  }

  /** The connection is lost, or must be: nothing more is read or written. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Stops reading the request body (the upstream's buffer is full). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (this.#phase !== Phase.Closed) this.socket.resume();
  }

  /** Whether the client can take more (its buffer is below the high-water mark). */
  get writable(): boolean {
    return !this.socket.writableNeedDrain;
  }

  #onDrain = (): void => {
    this.#exchange?.clientDrained();
  };

  #onClose = (): void => {
    this.#phase = Phase.Closed;
    this.#deadline = Number.POSITIVE_INFINITY;
    this.#p.clients.delete(this);
    const exchange = this.#exchange;
    if (exchange !== undefined) {
      this.#exchange = undefined;
      this.#p.inFlight--;
      exchange.clientGone();
    }
  };
}

function noop(): void {}

/** One request: picks an upstream, sends the head, passes the body, relays the response. */
class Exchange {
  readonly #p: NetProxyServer;
  readonly client: ClientConnection;
  readonly head: RequestHead;
  /** Request body bytes still to pass (Content-Length), or -1 (chunked). */
  #remaining: number;
  #framing: ChunkedFraming | undefined;
  #handle: PickHandle | undefined;
  #upstream: UpstreamConnection | undefined;
  #requestHead = '';
  /** Body bytes received before the upstream connection was ready. */
  #early: Buffer[] | undefined;
  #attempts = 0;
  #tried: Set<string> | undefined;
  #bodyDone = false;
  #responded = false;
  #over = false;
  report: { ok: boolean; latencyMs: number; load: number | undefined; cancelled?: boolean } | undefined;

  constructor(p: NetProxyServer, client: ClientConnection, head: RequestHead) {
    this.#p = p;
    this.client = client;
    this.head = head;
    this.#remaining = head.contentLength;
    if (head.contentLength === -1) this.#framing = new ChunkedFraming(p.s.maxHeaderBytes);
    if (head.contentLength === 0) this.#bodyDone = true;
  }

  /** The server's sweep: the upstream's deadlines. */
  check(now: number): void {
    this.#upstream?.check(now);
  }

  get isHead(): boolean {
    return this.head.method === 'HEAD';
  }

  start(rest: Buffer): void {
    const head = this.head;
    const client = this.client;
    let text: string;
    if (head.forwardLines !== undefined && !client.trusted) {
      // The usual case: the lines the parser kept, then this proxy's forwarding fields.
      text = head.forwardLines + client.forwardingFields(head.host);
    } else {
      const headers: OutgoingHeaders = this.#p.s.forwarding.headers(head.headers, client.peer);
      text = '';
      for (const name in headers) {
        if (name === 'transfer-encoding') continue;
        const value = headers[name]!;
        if (typeof value === 'string') text += `${name}: ${value}\r\n`;
        else for (const v of value) text += `${name}: ${v}\r\n`;
      }
    }
    if (head.contentLength === -1) text += 'transfer-encoding: chunked\r\n';
    this.#requestHead = text;
    if (this.#bodyDone) this.client.keep(rest);
    else if (rest.length > 0) this.body(rest, 0);
    // A malformed start of a chunked body has been answered already.
    if (!this.#over) this.#attempt();
  }

  /** Picks an upstream and sends the request to it. */
  #attempt(): void {
    const s = this.#p.s;
    let handle: PickHandle;
    let target: Target;
    try {
      const key = s.key?.({
        method: this.head.method,
        target: this.head.target,
        headers: this.head.headers,
        remoteAddress: this.client.remoteAddress,
      });
      handle = s.balancer.pick(key === undefined ? undefined : { key });
      for (let i = 0; i < 3 && this.#tried?.has(handle.endpoint.id) && this.#tried.size < s.balancer.size; i++) {
        handle.done({ ok: true, cancelled: true });
        handle = s.balancer.pick(key === undefined ? undefined : { key });
      }
    } catch (error) {
      this.#fail(error);
      return;
    }
    this.#attempts++;
    this.#handle = handle;
    try {
      target = this.#p.target(handle.endpoint.address);
    } catch (error) {
      handle.done({ ok: false });
      this.#handle = undefined;
      this.#fail(new UpstreamError('unreachable', handle.endpoint, error));
      return;
    }
    const upstream = this.#p.upstream(target);
    this.#upstream = upstream;
    const head = `${this.head.method} ${target.base}${this.head.target} HTTP/1.1\r\nhost: ${target.authority}\r\n${this.#requestHead}\r\n`;
    if (upstream.connected) upstream.send(this, head, this.#takeEarly());
    else {
      // Body bytes wait in the client's socket until the upstream connection is open.
      if (!this.#bodyDone) this.client.pause();
      upstream.connectThen(this, head);
    }
  }

  #takeEarly(): Buffer[] | undefined {
    const early = this.#early;
    this.#early = undefined;
    return early;
  }

  /** The upstream connection opened: send the head and what arrived of the body. */
  connected(upstream: UpstreamConnection, head: string): void {
    if (this.#over || upstream !== this.#upstream) return;
    upstream.send(this, head, this.#takeEarly());
    if (!this.#bodyDone) this.client.resume();
  }

  /** The upstream connection could not be opened: nothing was sent. */
  connectFailed(upstream: UpstreamConnection, error: Error): void {
    if (this.#over || upstream !== this.#upstream) return;
    this.#upstream = undefined;
    const handle = this.#handle!;
    this.#handle = undefined;
    handle.done({ ok: false });
    if (this.#attempts < this.#p.s.maxAttempts) {
      (this.#tried ??= new Set()).add(handle.endpoint.id);
      this.#attempt();
      return;
    }
    this.#fail(new UpstreamError('unreachable', handle.endpoint, error));
  }

  /** Request body bytes from `chunk[from..]`. */
  body(chunk: Buffer, from: number): void {
    if (this.#bodyDone || this.#over) return;
    let end: number;
    if (this.#framing !== undefined) {
      try {
        end = this.#framing.scan(chunk, from);
      } catch (error) {
        this.clientFailed(error as HeadError);
        return;
      }
    } else {
      const available = chunk.length - from;
      end = available >= this.#remaining ? from + this.#remaining : -1;
      this.#remaining -= end === -1 ? available : this.#remaining;
    }
    const data = end === -1 ? (from === 0 ? chunk : chunk.subarray(from)) : chunk.subarray(from, end);
    if (data.length > 0) this.#sendBody(data);
    if (end !== -1) {
      this.#bodyDone = true;
      this.client.bodyDone(chunk.subarray(end));
    }
  }

  #sendBody(data: Buffer): void {
    const upstream = this.#upstream;
    if (upstream === undefined || !upstream.connected || !upstream.sent) {
      (this.#early ??= []).push(data);
      return;
    }
    if (!upstream.write(data)) this.client.pause();
  }

  upstreamDrained(): void {
    if (!this.#bodyDone) this.client.resume();
  }

  /** The client broke the request (a malformed chunked body, too slow): answer if possible, close. */
  clientFailed(error: HeadError): void {
    if (this.#over) return;
    if (this.#responded) {
      this.#cancel();
      this.client.destroy();
      return;
    }
    this.#releaseUpstream(false, { ok: true, cancelled: true });
    this.#over = true;
    this.client.refuse(error);
    this.client.exchangeDone(this, false);
  }

  /** The response head arrived. */
  responseHead(upstream: UpstreamConnection, status: number, head: string, load: string | undefined, close: boolean): void {
    const s = this.#p.s;
    const handle = this.#handle!;
    let ok = true;
    try {
      ok = s.isFailure ? !s.isFailure(status) : status < 500;
    } catch {
      ok = false;
    }
    const loadValue = load === undefined || load.trim() === '' ? undefined : Number(load);
    this.report = { ok, latencyMs: handle.elapsedMs(), load: Number.isFinite(loadValue) ? loadValue : undefined };
    this.#responded = true;
    const closing = close || !this.#bodyDone || this.client.closing;
    upstream.pendingHead = closing ? `${head}connection: close\r\n\r\n` : `${head}\r\n`;
  }

  /** Response body bytes (the first call carries the head). */
  responseData(data: Buffer | undefined, upstream: UpstreamConnection): boolean {
    // One write per read, into a buffer of its own (the read buffer is reused): the head and
    // the first body bytes go out together.
    const head = upstream.pendingHead;
    if (head !== undefined) {
      upstream.pendingHead = undefined;
      const out = Buffer.allocUnsafe(head.length + (data?.length ?? 0));
      out.write(head, 0, 'latin1');
      data?.copy(out, head.length);
      return this.client.write(out);
    }
    return data === undefined || data.length === 0 ? true : this.client.write(Buffer.from(data));
  }

  clientDrained(): void {
    this.#upstream?.resumeReading();
  }

  /** The response ended; `reusable` when the upstream connection can serve another request. */
  responseEnd(upstream: UpstreamConnection, reusable: boolean): void {
    if (this.#over) return;
    this.#over = true;
    const report = this.report!;
    this.#upstream = undefined;
    const handle = this.#handle!;
    this.#handle = undefined;
    handle.done(report);
    const clientReusable = reusable && this.#bodyDone;
    if (reusable && this.#bodyDone) this.#p.release(upstream);
    else upstream.destroy();
    this.client.exchangeDone(this, clientReusable);
  }

  /** The upstream failed: before the response head (an answer is sent) or during the body (the client is cut off). */
  upstreamFailed(upstream: UpstreamConnection, error: unknown, timedOut: boolean): void {
    if (this.#over || upstream !== this.#upstream) return;
    const handle = this.#handle!;
    if (this.#responded) {
      this.#over = true;
      this.#upstream = undefined;
      this.#handle = undefined;
      upstream.destroy();
      this.report!.ok = false;
      handle.done(this.report!);
      this.client.destroy();
      return;
    }
    this.#releaseUpstream(false, { ok: false });
    this.#fail(new UpstreamError(timedOut ? 'timeout' : 'unreachable', handle.endpoint, error));
  }

  /** A reused keep-alive connection was closed by the upstream before answering: send again on a new one. */
  resend(upstream: UpstreamConnection): boolean {
    if (this.#over || upstream !== this.#upstream || this.#responded || this.head.contentLength !== 0) return false;
    upstream.destroy();
    const fresh = new UpstreamConnection(this.#p, upstream.target);
    this.#upstream = fresh;
    fresh.connectThen(this, upstream.lastHead);
    return true;
  }

  #releaseUpstream(_reuse: false, outcome: { ok: boolean; cancelled?: boolean }): void {
    const upstream = this.#upstream;
    this.#upstream = undefined;
    upstream?.destroy();
    const handle = this.#handle;
    this.#handle = undefined;
    handle?.done(outcome);
  }

  #fail(error: unknown): void {
    if (this.#over) return;
    this.#over = true;
    this.client.answer(proxyRejection(error) ?? UPSTREAM_FAILED, this);
  }

  #cancel(): void {
    if (this.#over) return;
    this.#over = true;
    const upstream = this.#upstream;
    this.#upstream = undefined;
    upstream?.destroy();
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle !== undefined) {
      if (this.report) {
        this.report.cancelled = true;
        handle.done(this.report);
      } else handle.done({ ok: false, cancelled: true });
    }
  }

  /** The client went away. */
  clientGone(): void {
    this.#cancel();
  }
}

/** What an upstream connection reads: nothing (idle), a response head, a response body. */
const Reading = { Idle: 0, Head: 1, Body: 2 } as const;
type Reading = (typeof Reading)[keyof typeof Reading];

/** One connection to an upstream: sends requests, frames responses. */
class UpstreamConnection {
  readonly #p: NetProxyServer;
  readonly target: Target;
  readonly socket: Socket;
  connected = false;
  /** The current request's head was written. */
  sent = false;
  idleSince = 0;
  /** Requests this connection has carried. */
  #served = 0;
  #exchange: Exchange | undefined;
  #reading: Reading = Reading.Idle;
  #pending: Buffer | undefined;
  /** Response body bytes still due (Content-Length), -1 chunked, -2 until close. */
  #remaining = 0;
  #framing: ChunkedFraming | undefined;
  #close = false;
  #receivedAny = false;
  /** Deadlines (performance.now() ms), checked by the server's sweep through the exchange. */
  #connectDeadline = Number.POSITIVE_INFINITY;
  #headDeadline = Number.POSITIVE_INFINITY;
  #bodyDeadline = Number.POSITIVE_INFINITY;
  #reads = 0;
  #readsAtCheck = 0;
  pendingHead: string | undefined;
  lastHead = '';
  #paused = false;

  constructor(p: NetProxyServer, target: Target) {
    this.#p = p;
    this.target = target;
    // Reads land in one buffer shared by every upstream connection (no stream chunk per read):
    // each read is handled, and what must outlive it copied, before the next one.
    this.socket = connect({ host: target.host, port: target.port, noDelay: true, onread: { buffer: READ_BUFFER, callback: this.#onRead } });
    this.socket.on('error', this.#onError);
    this.socket.on('close', this.#onClose);
    this.socket.on('drain', this.#onDrain);
  }

  connectThen(exchange: Exchange, head: string): void {
    this.#exchange = exchange;
    this.lastHead = head;
    this.#connectDeadline = performance.now() + this.#p.s.connectTimeoutMs;
    this.socket.once('connect', () => {
      this.#connectDeadline = Number.POSITIVE_INFINITY;
      this.connected = true;
      exchange.connected(this, head);
    });
  }

  send(exchange: Exchange, head: string, early: Buffer[] | undefined): void {
    this.#exchange = exchange;
    this.lastHead = head;
    this.sent = true;
    this.#served++;
    this.#reading = Reading.Head;
    this.#receivedAny = false;
    this.#close = false;
    this.#reads = 0;
    this.#readsAtCheck = 0;
    const socket = this.socket;
    if (early !== undefined) {
      socket.cork();
      socket.write(head, 'latin1');
      for (const b of early) socket.write(b);
      socket.uncork();
    } else {
      socket.write(head, 'latin1');
    }
    this.#headDeadline = performance.now() + this.#p.s.timeoutMs;
  }

  /** Acts on a deadline that passed: connecting, waiting for the response head, or between two reads of its body. */
  check(now: number): void {
    if (now >= this.#connectDeadline) {
      this.#connectDeadline = Number.POSITIVE_INFINITY;
      this.socket.destroy(new Error(`connect timed out after ${this.#p.s.connectTimeoutMs} ms`));
      return;
    }
    const exchange = this.#exchange;
    if (exchange === undefined) return;
    if (this.#reading === Reading.Head && now >= this.#headDeadline) {
      this.#headDeadline = Number.POSITIVE_INFINITY;
      exchange.upstreamFailed(this, new TimeoutError(this.#p.s.timeoutMs), true);
    } else if (this.#reading === Reading.Body && now >= this.#bodyDeadline) {
      if (this.#reads !== this.#readsAtCheck || this.#paused) {
        this.#readsAtCheck = this.#reads;
        this.#bodyDeadline = now + this.#p.s.bodyTimeoutMs;
        return;
      }
      this.#bodyDeadline = Number.POSITIVE_INFINITY;
      exchange.upstreamFailed(this, new TimeoutError(this.#p.s.bodyTimeoutMs, 'the upstream response body stalled'), true);
    }
  }

  write(data: Buffer): boolean {
    return this.socket.write(data);
  }

  resumeReading(): void {
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }
  }

  #onDrain = (): void => {
    this.#exchange?.upstreamDrained();
  };

  #onRead = (bytes: number, buffer: Buffer): boolean => {
    this.#onData(buffer.subarray(0, bytes));
    return true;
  };

  #onData(chunk: Buffer): void {
    const exchange = this.#exchange;
    if (exchange === undefined || this.#reading === Reading.Idle) {
      // Bytes from an idle upstream: nothing can be framed after them (the pool skips destroyed sockets).
      this.destroy();
      return;
    }
    this.#receivedAny = true;
    if (this.#reading === Reading.Head) {
      const buf = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
      this.#head(exchange, buf);
      return;
    }
    this.#reads++;
    this.#body(exchange, chunk, 0);
  }

  #head(exchange: Exchange, buf: Buffer): void {
    const end = buf.indexOf(HEAD_END);
    if (end === -1) {
      if (buf.length > 65_536) exchange.upstreamFailed(this, new HeadError(502, 'the upstream response head is larger than 64 KiB'), false);
      else this.#pending = Buffer.from(buf); // a copy: the read buffer is reused
      return;
    }
    this.#pending = undefined;
    let parsed: ReturnType<typeof parseResponseHead>;
    try {
      parsed = parseResponseHead(buf.toString('latin1', 0, end), exchange.isHead, this.#p.s.loadHeader);
    } catch (error) {
      exchange.upstreamFailed(this, error, false);
      return;
    }
    if (parsed.status < 200) {
      // An interim answer (103 Early Hints): dropped; the final one follows.
      if (parsed.status === 101) {
        exchange.upstreamFailed(this, new HeadError(502, 'the upstream switched protocols unasked'), false);
        return;
      }
      if (buf.length > end + 4) this.#head(exchange, buf.subarray(end + 4));
      return;
    }
    this.#close = parsed.close;
    this.#remaining = parsed.contentLength;
    this.#framing = parsed.contentLength === -1 ? new ChunkedFraming(65_536) : undefined;
    this.#reading = Reading.Body;
    exchange.responseHead(this, parsed.status, parsed.head, parsed.load, parsed.close);
    if (this.#remaining === 0) {
      exchange.responseData(undefined, this);
      this.#end(exchange, buf.length === end + 4);
      return;
    }
    if (buf.length > end + 4) this.#body(exchange, buf, end + 4);
    else exchange.responseData(undefined, this);
    if (this.#reading === Reading.Body) {
      this.#bodyDeadline = this.#p.s.bodyTimeoutMs > 0 ? performance.now() + this.#p.s.bodyTimeoutMs : Number.POSITIVE_INFINITY;
    }
  }

  #body(exchange: Exchange, buf: Buffer, from: number): void {
    let end: number;
    if (this.#remaining === -2) end = -1;
    else if (this.#framing !== undefined) {
      try {
        end = this.#framing.scan(buf, from);
      } catch (error) {
        exchange.upstreamFailed(this, new HeadError(502, `malformed chunked body from the upstream: ${(error as Error).message}`), false);
        return;
      }
    } else {
      const available = buf.length - from;
      end = available >= this.#remaining ? from + this.#remaining : -1;
      this.#remaining -= end === -1 ? available : this.#remaining;
    }
    const data = end === -1 ? (from === 0 ? buf : buf.subarray(from)) : buf.subarray(from, end);
    const more = exchange.responseData(data, this);
    if (end !== -1) {
      this.#end(exchange, end === buf.length);
      return;
    }
    if (!more) {
      this.#paused = true;
      this.socket.pause();
    }
  }

  /** The response is complete; `clean` when nothing followed it. */
  #end(exchange: Exchange, clean: boolean): void {
    this.#reading = Reading.Idle;
    this.#exchange = undefined;
    this.sent = false;
    this.resumeReading();
    exchange.responseEnd(this, clean && !this.#close && !this.#p.closing);
  }

  #onError = (error: Error): void => {
    this.#fail(error);
  };

  #onClose = (): void => {
    this.#fail(new Error('the upstream closed the connection'));
  };

  #fail(error: Error): void {
    this.#connectDeadline = Number.POSITIVE_INFINITY;
    const exchange = this.#exchange;
    if (exchange === undefined) return;
    if (!this.connected) {
      this.#exchange = undefined;
      exchange.connectFailed(this, error);
      return;
    }
    if (this.#reading === Reading.Body && this.#remaining === -2) {
      // A response framed by the connection's end: this is its end.
      this.#end(exchange, false);
      return;
    }
    if (this.#reading === Reading.Head && !this.#receivedAny && this.#served > 1 && exchange.resend(this)) return;
    this.#exchange = undefined;
    exchange.upstreamFailed(this, error, false);
  }

  destroy(): void {
    this.#exchange = undefined;
    this.#reading = Reading.Idle;
    this.#connectDeadline = Number.POSITIVE_INFINITY;
    this.socket.destroy();
  }
}
