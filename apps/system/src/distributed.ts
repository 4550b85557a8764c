/**
 * The reference system in its distributed mode, as an operator runs it: every service its
 * own process started from its `main.ts`, configured only through `BALLAST_*` variables,
 * on a real Redis. For tests that attack it from outside.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN: Record<'api' | 'gateway' | 'worker', string> = {
  api: fileURLToPath(new URL('../../api/src/main.ts', import.meta.url)),
  gateway: fileURLToPath(new URL('../../gateway/src/main.ts', import.meta.url)),
  worker: fileURLToPath(new URL('../../worker/src/main.ts', import.meta.url)),
};

/** One service process and what it printed when it started. */
export interface ServiceProcess {
  readonly proc: ChildProcess;
  /** The JSON line the service prints once it listens (`url`, `ops`, `port`…). */
  readonly info: Record<string, unknown>;
  /** Everything it wrote to stderr (its log). */
  log(): string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `service` with `env` added to this process's environment; resolves once it has printed where it listens. */
export function spawnService(service: keyof typeof MAIN, env: Record<string, string>, timeoutMs = 60_000): Promise<ServiceProcess> {
  const proc = spawn(process.execPath, ['--conditions=@ballast/source', MAIN[service]], {
    env: { ...withoutBallast(process.env), BALLAST_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr?.on('data', (chunk) => {
    stderr += String(chunk);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (graceMs = 5000): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGCONT'); // a paused process cannot handle SIGTERM
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${service} did not start within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    let stdout = '';
    proc.stdout?.on('data', (chunk) => {
      stdout += String(chunk);
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (!line || !stdout.includes('\n')) return;
      clearTimeout(timer);
      resolve({ proc, info: JSON.parse(line) as Record<string, unknown>, log: () => stderr, stop });
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${service} exited with ${code} before it started:\n${stderr}`));
    });
  });
}

/** The environment without this process's own `BALLAST_*` variables: each service gets only what a test gives it. */
function withoutBallast(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('BALLAST_')));
}

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
