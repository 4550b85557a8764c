/**
 * The reference system in its distributed mode, as an operator runs it: every service its
 * own process started from its `main.ts`, configured only through `BALLAST_*` variables,
 * on a real Redis. For tests that attack it from outside.
 */
import { type ServiceProcess, spawnService } from './processes.ts';

/** A distributed system: API servers and workers on one Redis, a gateway in front. */
export interface Distributed {
  readonly gateway: ServiceProcess;
  /** The gateway's public URL. */
  readonly url: string;
  /** The gateway's operational URL. */
  readonly ops: string;
  readonly apis: ServiceProcess[];
  readonly workers: ServiceProcess[];
  close(): Promise<void>;
}

/** Options of {@link startDistributed}: counts, and variables per kind of service. */
export interface DistributedOptions {
  redisUrl: string;
  apis?: number;
  workers?: number;
  /** Given to every service. */
  env?: Record<string, string>;
  api?: Record<string, string>;
  worker?: Record<string, string>;
  gateway?: Record<string, string>;
}

/** Starts `workers` workers, `apis` API servers and a gateway over them, each its own process. */
export async function startDistributed(options: DistributedOptions): Promise<Distributed> {
  const common = { BALLAST_REDIS_URL: options.redisUrl, BALLAST_REDIS_MIN_REPLICAS: '0', ...options.env };
  const started: ServiceProcess[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(started.map((s) => s.stop()));
  };
  try {
    const workers = await Promise.all(
      Array.from({ length: options.workers ?? 1 }, (_, i) =>
        spawnService('worker', { ...common, BALLAST_WORKER_NAME: `worker-${i + 1}`, ...options.worker }),
      ),
    );
    started.push(...workers);
    const apis = await Promise.all(
      Array.from({ length: options.apis ?? 2 }, (_, i) =>
        spawnService('api', { ...common, BALLAST_API_PORT: '0', BALLAST_API_NAME: `api-${i + 1}`, ...options.api }),
      ),
    );
    started.push(...apis);
    const gateway = await spawnService('gateway', {
      ...common,
      BALLAST_GATEWAY_UPSTREAMS: apis.map((a) => String(a.info.url)).join(','),
      BALLAST_GATEWAY_PORT: '0',
      BALLAST_GATEWAY_OPS_PORT: '0',
      ...options.gateway,
    });
    started.push(gateway);
    return { gateway, url: String(gateway.info.url), ops: String(gateway.info.ops), apis, workers, close };
  } catch (error) {
    await close();
    throw error;
  }
}
