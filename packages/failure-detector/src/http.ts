import { type Clock, Emitter, func, InvalidOptionError, type Listener, nonEmptyString, type Unsubscribe } from '@ballast/common';
import { FailureDetectorError, isFailureDetectorError } from './errors.ts';
import type { HeartbeatMonitor } from './monitor.ts';
import { Ticker, type TickerTiming } from './schedule.ts';
import { describeError, HeartbeatSender, type HeartbeatSenderOptions, type PacingOptions, pacing } from './sender.ts';

/** Options of {@link httpHeartbeatSender}. */
export interface HttpHeartbeatSenderOptions extends HeartbeatSenderOptions {
  /** Where to POST heartbeats, e.g. the URL of a route made with `heartbeatHandler`. */
  url: string | URL;
  /** Extra request headers, e.g. an authorization token. */
  headers?: Record<string, string>;
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * Starts POSTing `{"id":…,"seq":…}` as JSON to `url` every `intervalMs` (with jitter).
 * A non-2xx answer counts as a failure.
 *
 * @example
 * ```ts
 * const sender = httpHeartbeatSender({ url: 'http://gateway:8080/heartbeats', id: 'api-1' });
 * sender.on('fail', ({ error }) => log.warn(error.message));
 * // on shutdown
 * await sender.close();
 * ```
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function httpHeartbeatSender(options: HttpHeartbeatSenderOptions): HeartbeatSender {
  const url = urlOption('url', options?.url);
  const doFetch = options.fetch === undefined ? globalThis.fetch : func<typeof fetch>('fetch', options.fetch);
  const headers = { 'content-type': 'application/json', ...options.headers };
  return new HeartbeatSender(options, async (message, signal) => {
    const response = await doFetch(url, { method: 'POST', headers, body: JSON.stringify(message), signal });
    // Drain the body so the connection goes back to the pool.
    await response.arrayBuffer();
    if (!response.ok) {
      throw new FailureDetectorError(
        'ERR_BALLAST_HEARTBEAT_FAILED',
        `heartbeat ${message.seq} of ${message.id} got HTTP ${response.status}`,
        { status: response.status },
      );
    }
  });
}

/** A node the {@link HealthPoller} probes. */
export interface HealthTarget {
  /** The node's id in the monitor. */
  id: string;
  /** The URL to GET, e.g. `http://10.0.0.7:8080/healthz`. */
  url: string | URL;
}

/** Options of {@link HealthPoller}. */
export interface HealthPollerOptions extends PacingOptions {
  /** The monitor that receives a heartbeat for every healthy answer. */
  monitor: Pick<HeartbeatMonitor, 'add' | 'remove' | 'heartbeat'>;
  /** Nodes to probe from the start; more can be added with {@link HealthPoller.add}. @default [] */
  targets?: readonly HealthTarget[];
  /**
   * Decides whether an answer is healthy. The body is drained afterwards if unread.
   * @default (response) => response.ok
   */
  isHealthy?: (response: Response) => boolean | Promise<boolean>;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Payload of the poller's `probe` event. */
export interface ProbeEvent {
  id: string;
  /** True when the answer was healthy, and so counted as a heartbeat. */
  ok: boolean;
  latencyMs: number;
  /** HTTP status, when the node answered. */
  status: number | undefined;
  /** Why the probe failed (`ERR_BALLAST_PROBE_FAILED`), when it did. */
  error: FailureDetectorError | undefined;
}

/** Events of {@link HealthPoller}. */
export interface HealthPollerEvents {
  probe: ProbeEvent;
}

/** A snapshot returned by {@link HealthPoller.stats}. */
export interface HealthPollerStats {
  /** Nodes being probed. */
  targets: number;
  /** Probes answered healthy. */
  healthy: number;
  /** Probes that failed: error, timeout or unhealthy answer. */
  failed: number;
}

/**
 * Probes nodes that cannot push heartbeats: GETs each target's health URL every
 * `intervalMs` (with jitter, each target on its own schedule) and turns every healthy
 * answer into a heartbeat in the monitor. A failed probe records nothing: the
 * detector sees silence and suspects the node once it lasts. Targets are added to the
 * monitor when added here, and removed from it when removed here.
 *
 * @example
 * ```ts
 * const monitor = new HeartbeatMonitor();
 * const poller = new HealthPoller({
 *   monitor,
 *   targets: [{ id: 'api-1', url: 'http://10.0.0.7:8080/healthz' }],
 *   intervalMs: 500,
 * });
 * // on shutdown
 * await poller.close();
 * monitor.close();
 * ```
 */
export class HealthPoller implements AsyncDisposable {
  readonly #monitor: HealthPollerOptions['monitor'];
  readonly #timing: TickerTiming & { clock: Clock };
  readonly #isHealthy: (response: Response) => boolean | Promise<boolean>;
  readonly #fetch: typeof fetch;
  readonly #headers: Record<string, string> | undefined;
  readonly #targets = new Map<string, Probing>();
  readonly #events = new Emitter<HealthPollerEvents>();
  #closed = false;
  #healthy = 0;
  #failed = 0;

  /** @throws {InvalidOptionError} naming the first invalid option or target. */
  constructor(options: HealthPollerOptions) {
    this.#monitor = options?.monitor;
    func('monitor.heartbeat', this.#monitor?.heartbeat);
    this.#timing = pacing(options);
    this.#isHealthy = options.isHealthy === undefined ? (response) => response.ok : func('isHealthy', options.isHealthy);
    this.#fetch = options.fetch === undefined ? globalThis.fetch : func<typeof fetch>('fetch', options.fetch);
    this.#headers = options.headers;
    for (const target of options.targets ?? []) this.add(target);
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof HealthPollerEvents>(event: K, listener: Listener<HealthPollerEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /**
   * Starts probing `target` (first probe at once) and adds it to the monitor. Returns
   * false if a target with that id is already probed.
   * @throws {InvalidOptionError} when the id or URL is invalid.
   */
  add(target: HealthTarget): boolean {
    const id = nonEmptyString('target.id', target?.id);
    const url = urlOption('target.url', target.url);
    if (this.#closed || this.#targets.has(id)) return false;
    this.#monitor.add(id);
    const probing: Probing = {};
    this.#targets.set(id, probing);
    probing.ticker = new Ticker((signal) => this.#probe(id, url, signal, probing), this.#timing);
    return true;
  }

  /** Stops probing `id` and removes it from the monitor. Returns false if it was not probed. */
  async remove(id: string): Promise<boolean> {
    const probing = this.#targets.get(id);
    if (!probing) return false;
    this.#targets.delete(id);
    this.#monitor.remove(id);
    await probing.ticker?.stop();
    return true;
  }

  /** Counters since the poller was created. */
  stats(): HealthPollerStats {
    return { targets: this.#targets.size, healthy: this.#healthy, failed: this.#failed };
  }

  /** Stops every probe, aborting those under way, and waits for them. Leaves the monitor's nodes in place. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const probings = [...this.#targets.values()];
    this.#targets.clear();
    await Promise.all(probings.map((probing) => probing.ticker?.stop()));
    this.#events.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #probe(id: string, url: URL, signal: AbortSignal, probing: Probing): Promise<void> {
    const { clock } = this.#timing;
    const started = clock.now();
    let status: number | undefined;
    let error: FailureDetectorError | undefined;
    try {
      const response = await this.#fetch(url, { headers: this.#headers, signal });
      status = response.status;
      let healthy: boolean;
      try {
        healthy = await this.#isHealthy(response);
      } finally {
        if (!response.bodyUsed) await response.body?.cancel();
      }
      if (!healthy) error = new FailureDetectorError('ERR_BALLAST_PROBE_FAILED', `${id} answered HTTP ${status}, unhealthy`, { status });
    } catch (cause) {
      error = isFailureDetectorError(cause)
        ? cause
        : new FailureDetectorError('ERR_BALLAST_PROBE_FAILED', `probe of ${id} failed: ${describeError(cause)}`, { cause, status });
    }
    // A probe aborted by remove() or close() says nothing about the node.
    if (this.#targets.get(id) !== probing) return;
    if (error === undefined) {
      this.#healthy++;
      this.#monitor.heartbeat(id);
    } else {
      this.#failed++;
    }
    this.#events.emit('probe', { id, ok: error === undefined, latencyMs: clock.now() - started, status, error });
  }
}

interface Probing {
  ticker?: Ticker;
}

function urlOption(option: string, value: unknown): URL {
  if (value instanceof URL) return value;
  if (typeof value === 'string' && URL.canParse(value)) return new URL(value);
  throw new InvalidOptionError(option, 'an absolute URL', value);
}
