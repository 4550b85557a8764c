import { type Api, type ApiOptions, createApi, type Listening, listen } from '@ballast/app-api';
import { InProcessQueue, type JobQueue, jsonLines, type LogSink } from '@ballast/app-queue';
import { logWorker, ResizeWorker, type ResizeWorkerOptions, workerMetrics } from '@ballast/app-worker';
import { Registry } from 'prom-client';
import { createGateway, type Gateway, type GatewayOptions } from './gateway.ts';

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
  /** Gateway port; 0 for a free one. @default 0 */
  port?: number;
  /**
   * Log of every service (the gateway, the API servers, the workers' jobs); `api.log`
   * and `gateway.log` override it for one kind of service.
   * @default JSON lines on stderr at `BALLAST_LOG_LEVEL` (warnings and errors unless set)
   */
  log?: LogSink;
}

/** A running system. */
export interface RunningSystem extends AsyncDisposable {
  readonly url: string;
  readonly gateway: Gateway;
  readonly apis: ReadonlyArray<{ api: Api; server: Listening; queue: JobQueue }>;
  readonly workers: ResizeWorker[];
  /** Starts one more worker (e.g. after stopping one). */
  addWorker(): ResizeWorker;
  /** Stops the gateway, then the API servers, then the workers (finishing their jobs), then the queues. */
  close(): Promise<void>;
}

/**
 * Starts the whole reference system in this process, on loopback: `apis` API servers
 * on free ports, `workers` resize workers, and the gateway in front. The embedded
 * deployment of `npm start`; the tests and the benchmark use it too.
 */
export async function startSystem(options: SystemOptions = {}): Promise<RunningSystem> {
  let shared: InProcessQueue | undefined;
  const queues = new Set<JobQueue>();
  const queueFor = (service: string): JobQueue => {
    const queue = options.queue ? options.queue(service) : (shared ??= new InProcessQueue());
    queues.add(queue);
    return queue;
  };
  const apis: Array<{ api: Api; server: Listening; queue: JobQueue }> = [];
  const workers: ResizeWorker[] = [];
  let gatewayServer: Listening | undefined;
  let gateway: Gateway | undefined;
  let workerCount = 0;
  const log = options.log ?? jsonLines();
  // The workers have no HTTP port of their own here: their metrics join the gateway's /metrics.
  const registry = options.gateway?.registry ?? new Registry();
  const addWorker = (): ResizeWorker => {
    const name = `worker-${++workerCount}`;
    const worker = new ResizeWorker({ concurrency: options.workerConcurrency, ...options.worker, queue: queueFor(name), name });
    logWorker(worker, log);
    workerMetrics(worker, registry);
    worker.start();
    workers.push(worker);
    return worker;
  };
  const close = async (): Promise<void> => {
    await gatewayServer?.close();
    await gateway?.close();
    await Promise.all(apis.map(({ server }) => server.close()));
    await Promise.all(apis.map(({ api }) => api.close()));
    await Promise.all(workers.map((w) => w.close()));
    await Promise.all([...queues].map((q) => q.close()));
  };
  try {
    for (let i = 0; i < (options.workers ?? 1); i++) addWorker();
    for (let i = 0; i < (options.apis ?? 3); i++) {
      const name = `api-${i + 1}`;
      const queue = queueFor(name);
      const workerSlots = Math.max(1, (options.workers ?? 1) * (workers[0]?.concurrency ?? 1));
      const api = createApi({ name, workerSlots, log, ...options.api, queue });
      apis.push({ api, queue, server: await listen(api.app.fetch) });
    }
    gateway = createGateway({
      log,
      ...options.gateway,
      registry,
      upstreams: apis.map(({ server }, i) => ({ id: `api-${i + 1}`, url: server.url })),
    });
    gatewayServer = await listen(gateway.app.fetch, options.port ?? 0);
  } catch (error) {
    await close();
    throw error;
  }
  const g = gateway;
  return { url: gatewayServer.url, gateway: g, apis, workers, addWorker, close, [Symbol.asyncDispose]: close };
}
