import { type Api, type ApiOptions, createApi, FairShare } from '@ballast/app-api';
import { createGateway, type Gateway, type GatewayOptions, type ObservabilityOptions } from '@ballast/app-gateway';
import { InProcessQueue, type JobQueue } from '@ballast/app-queue';
import { createLogger, type Listening, type Logger, listen, type ServerLimits } from '@ballast/app-shared';
import type { UsageStore } from '@ballast/app-usage';
import { type JobUsage, logWorker, ResizeWorker, type ResizeWorkerOptions, workerMetrics } from '@ballast/app-worker';
import { Registry } from 'prom-client';

/** Options of {@link startSystem}. */
export interface SystemOptions {
  /** API servers behind the gateway. @default 3 */
  apis?: number;
  /**
   * Queue handle for each API server and worker. Called once per service, so each can
   * hold its own connection (Redis); return the same object to share one (in-process).
   * @default one shared InProcessQueue
   */
  queue?: (service: string) => JobQueue;
  /** Resize worker processes-in-process. @default 1 */
  workers?: number;
  /** Conversions per worker. @default os.availableParallelism() */
  workerConcurrency?: number;
  /** Extra API options (limits, hooks). */
  api?: Partial<ApiOptions>;
  /** Extra gateway options (strategy…). */
  gateway?: Partial<GatewayOptions>;
  /** Extra worker options (limits…). */
  worker?: Partial<ResizeWorkerOptions>;
  /**
   * Usage metering: every worker records each finished job with `record` before
   * acknowledging it (a `Recorder`'s `append` from @ballast/app-usage), and the API servers
   * serve `GET /v1/usage` from `store`.
   */
  usage?: { record: (usage: JobUsage) => Promise<unknown>; store?: Pick<UsageStore, 'tenantUsage'> };
  /** Gateway port; 0 for a free one. @default 0 */
  port?: number;
  /** Port of the gateway's operational listener; 0 for a free one. @default 0 */
  opsPort?: number;
  /** Connection limits and timeouts of the gateway's public listener. @default those of `listen()` */
  gatewayLimits?: ServerLimits;
  /**
   * Logger of every service (the gateway, the API servers, the workers' jobs), each
   * through a child carrying its `service`; `api.logger` and `gateway.logger` override it
   * for one kind of service.
   * @default JSON lines on stderr at level `warn`
   */
  logger?: Logger;
}

/** One API server of a running system. */
export interface RunningApi {
  readonly name: string;
  readonly api: Api;
  readonly queue: JobQueue;
  /** Its public listener (the gateway's upstream). */
  readonly server: Listening;
  /** Its operational listener: `/healthz`, `/readyz`, `/metrics`. */
  readonly ops: Listening;
}

/** A running system. */
export interface RunningSystem extends AsyncDisposable {
  /** The gateway's public listener: where clients send requests. */
  readonly url: string;
  /** The gateway's operational listener: `/healthz`, `/readyz`, `/metrics` (with the workers'), `/gateway/stats`. */
  readonly opsUrl: string;
  readonly gateway: Gateway;
  readonly apis: readonly RunningApi[];
  readonly workers: ResizeWorker[];
  /** Starts one more worker (e.g. after stopping one). */
  addWorker(): ResizeWorker;
  /** Stops the gateway, then the API servers, then the workers (finishing their jobs), then the queues. */
  close(): Promise<void>;
}

/**
 * Starts the whole reference system in this process, on loopback: `apis` API servers
 * on free ports, `workers` resize workers, and the gateway in front, each service with
 * its operational listener. The embedded deployment of `npm start`; the tests and the
 * benchmark use it too.
 */
export async function startSystem(options: SystemOptions = {}): Promise<RunningSystem> {
  const parts = new SystemParts(options);
  try {
    for (let i = 0; i < (options.workers ?? 1); i++) parts.addWorker();
    for (let i = 0; i < (options.apis ?? 3); i++) await parts.addApi(`api-${i + 1}`);
    const gateway = await parts.startGateway();
    const close = (): Promise<void> => parts.close();
    return {
      url: gateway.server.url,
      opsUrl: gateway.ops.url,
      gateway: gateway.gateway,
      apis: parts.apis,
      workers: parts.workers,
      addWorker: () => parts.addWorker(),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await parts.close();
    throw error;
  }
}

/** What a system has started so far, and how to stop it. */
class SystemParts {
  readonly apis: RunningApi[] = [];
  readonly workers: ResizeWorker[] = [];
  readonly #options: SystemOptions;
  readonly #logger: Logger;
  readonly #queues = new Set<JobQueue>();
  /** The gateway's registry: the workers, which have no port of their own here, add their metrics to it. */
  readonly #registry: Registry;
  #shared: InProcessQueue | undefined;
  #fairShare: FairShare | undefined;
  #gateway: Gateway | undefined;
  #gatewayServer: Listening | undefined;
  #gatewayOps: Listening | undefined;
  #workerCount = 0;

  constructor(options: SystemOptions) {
    this.#options = options;
    this.#logger = options.logger ?? createLogger();
    this.#registry = options.gateway?.registry ?? new Registry();
  }

  queueFor(service: string): JobQueue {
    const queue = this.#options.queue ? this.#options.queue(service) : (this.#shared ??= new InProcessQueue());
    this.#queues.add(queue);
    return queue;
  }

  addWorker(): ResizeWorker {
    const name = `worker-${++this.#workerCount}`;
    const options = this.#options;
    const worker = new ResizeWorker({
      concurrency: options.workerConcurrency,
      recordUsage: options.usage?.record,
      ...options.worker,
      queue: this.queueFor(name),
      name,
    });
    logWorker(worker, this.#logger);
    workerMetrics(worker, this.#registry);
    worker.start();
    this.workers.push(worker);
    return worker;
  }

  async addApi(name: string): Promise<void> {
    const queue = this.queueFor(name);
    const workerSlots = Math.max(1, (this.#options.workers ?? 1) * (this.workers[0]?.concurrency ?? 1));
    const usage = this.#options.usage?.store ? { usage: { store: this.#options.usage.store } } : {};
    const api = createApi({
      name,
      workerSlots,
      logger: this.#logger,
      ...usage,
      ...this.#options.api,
      fairShare: this.#fairShareFor(workerSlots),
      queue,
    });
    const server = await listen(api.app.fetch);
    this.apis.push({ name, api, queue, server, ops: await listen(api.ops.fetch) });
  }

  /** One fair share for every API server here (they count the same clients), unless `api.fairShare` says otherwise. */
  #fairShareFor(workerSlots: number): FairShare | false {
    const given = this.#options.api?.fairShare;
    if (given === false || given instanceof FairShare) return given;
    this.#fairShare ??= new FairShare({ workerSlots, ...given });
    return this.#fairShare;
  }

  async startGateway(): Promise<{ gateway: Gateway; server: Listening; ops: Listening }> {
    const gateway = createGateway({
      logger: this.#logger,
      ...this.#options.gateway,
      observability: this.#observability(),
      registry: this.#registry,
      upstreams: this.apis.map(({ name, server }) => ({ id: name, url: server.url })),
    });
    this.#gateway = gateway;
    this.#gatewayServer = await listen(gateway.app.fetch, { ...this.#options.gatewayLimits, port: this.#options.port ?? 0 });
    this.#gatewayOps = await listen(gateway.ops.fetch, { port: this.#options.opsPort ?? 0 });
    return { gateway, server: this.#gatewayServer, ops: this.#gatewayOps };
  }

  /** The dashboard's views of the queue and the workers, which the gateway cannot see on its own here. */
  #observability(): ObservabilityOptions | false {
    const own = this.#options.gateway?.observability;
    if (own === false) return false;
    const queue = this.apis[0]?.queue;
    return {
      ...(queue
        ? {
            queue: async () => {
              const [depth, oldestAgeMs] = await Promise.all([queue.depth(), queue.oldestWaitingAgeMs?.()]);
              return oldestAgeMs === undefined ? { depth } : { depth, oldestAgeMs };
            },
          }
        : {}),
      workers: () => ({
        busy: this.workers.reduce((n, w) => n + w.stats().active, 0),
        slots: this.workers.reduce((n, w) => n + w.concurrency, 0),
      }),
      ...(this.apis.some(({ api }) => api.dimmer) ? { dimmer: () => this.#dimmerLevel() } : {}),
      ...own,
    };
  }

  /** The brownout dimmer θ, averaged over the API servers (1: full quality). */
  #dimmerLevel(): number {
    const levels = this.apis.flatMap(({ api }) => (api.dimmer ? [api.dimmer.level] : []));
    return levels.length === 0 ? 1 : levels.reduce((a, b) => a + b, 0) / levels.length;
  }

  async close(): Promise<void> {
    await this.#gatewayServer?.close();
    await this.#gatewayOps?.close();
    await this.#gateway?.close();
    await Promise.all(this.apis.flatMap(({ server, ops }) => [server.close(), ops.close()]));
    await Promise.all(this.apis.map(({ api }) => api.close()));
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([...this.#queues].map((q) => q.close()));
  }
}
