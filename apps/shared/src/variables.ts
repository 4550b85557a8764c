/**
 * Every `BALLAST_*` environment variable of the reference system, by the service that
 * reads it. One catalogue, so each service can tell a typo of another service's variable
 * from a variable of its own, and the README table can be checked against it.
 *
 * A service adds its variables here (one spec object) and reads them with
 * {@link loadEnv}.
 */

import { TrustedProxies } from '@ballast/load-balancer';
import {
  boolVar,
  ConfigError,
  type EnvReport,
  type EnvSpec,
  type EnvValues,
  enumVar,
  hostPort,
  httpOrigin,
  intVar,
  listVar,
  portVar,
  readEnv,
  stringVar,
} from './env.ts';
import { INPUT_FORMATS, type InputFormat } from './image-format.ts';
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from './log.ts';

/** Balancing strategies the gateway can be configured with (those that need no affinity key). */
export const GATEWAY_STRATEGIES: readonly ['p2c', 'round-robin', 'least-connections', 'peak-ewma', 'random'] = [
  'p2c',
  'round-robin',
  'least-connections',
  'peak-ewma',
  'random',
];

const HOST = /^[\w.:[\]-]+$/;
const NAME = /^[\w.-]{1,64}$/;

/** Read by every service. */
export const COMMON_ENV = {
  BALLAST_LOG_LEVEL: enumVar('Lowest log level written (JSON lines on stderr)', LOG_LEVELS, 'warn'),
} as const satisfies EnvSpec;

/** Read wherever a queue is opened (API servers, workers, `npm start`): see `queueFromEnv` in @ballast/app-queue. */
export const QUEUE_ENV = {
  BALLAST_REDIS_SENTINELS: listVar('Sentinels to ask for the Redis primary', 'host:port,host:port,…', hostPort),
  BALLAST_REDIS_MASTER: stringVar('Name the Sentinels monitor', 'a name of letters, digits, ".", "_" or "-"', NAME),
  BALLAST_REDIS_URL: stringVar('One Redis primary (when no Sentinels are given)', 'a redis:// or rediss:// URL', /^rediss?:\/\/\S+$/),
  BALLAST_REDIS_CLUSTER: listVar('Redis Cluster nodes: the queue sharded over the cluster', 'host:port,host:port,…', hostPort),
  BALLAST_REDIS_SHARDS: intVar('Shards (streams under their own hash tag) on the Redis Cluster', { min: 1, max: 1024 }),
  BALLAST_REDIS_MIN_REPLICAS: intVar('Replicas that must confirm each job and result (WAIT)', { min: 0, max: 16 }),
  BALLAST_QUEUE_MAX_DEPTH: intVar('Jobs waiting or in progress before enqueue is refused (503)', { min: 1 }),
  BALLAST_QUEUE_LEASE_MS: intVar('Silence after which a dead worker’s job is reclaimed, ms', { min: 30, max: 3_600_000 }),
  BALLAST_QUEUE_HEARTBEAT_MS: intVar('Mean time between heartbeats of each process, ms', { min: 10, max: 60_000 }),
  BALLAST_QUEUE_HEARTBEAT_PAUSE_MS: intVar('Silence tolerated beyond it before a process is suspected, ms', { min: 0, max: 600_000 }),
} as const satisfies EnvSpec;

/** Read by the gateway, the API servers and the workers. */
export const IMAGE_ENV = {
  BALLAST_INPUT_FORMATS: listVar(
    'Input formats accepted (others are refused with 415)',
    `a comma-separated list of ${INPUT_FORMATS.join(', ')}`,
    (raw) => ((INPUT_FORMATS as readonly string[]).includes(raw) ? (raw as InputFormat) : undefined),
  ),
} as const satisfies EnvSpec;

/** Read by an API server run on its own (apps/api/src/main.ts). */
export const API_ENV = {
  BALLAST_API_PORT: portVar('Public port (the gateway’s upstream)', 8081),
  BALLAST_API_HOST: stringVar('Address to listen on', 'a host name or IP address', HOST, '127.0.0.1'),
  BALLAST_API_NAME: stringVar('Name in logs and metrics', 'a name of letters, digits, ".", "_" or "-"', NAME, 'api'),
  BALLAST_API_OPS_PORT: portVar('Operational listener (/healthz, /readyz, /metrics)', 0),
  BALLAST_API_DRAIN_MS: intVar('On SIGTERM, how long /healthz fails before the server closes, ms', { min: 0, max: 600_000 }, 3000),
  BALLAST_API_MAX_INFLIGHT: intVar('Requests held at once; beyond it, 503', { min: 1 }),
  BALLAST_API_MAX_BODY_BYTES: intVar('Largest image, bytes', { min: 1 }),
  BALLAST_API_DEFAULT_DEADLINE_MS: intVar('Deadline of a request that names none, ms', { min: 1, max: 600_000 }),
  BALLAST_API_ENQUEUE_RETRY_MS: intVar('How long an enqueue is retried while the queue fails over (within the request deadline), ms', {
    min: 0,
    max: 600_000,
  }),
  BALLAST_API_MAX_EXPECTED_WAIT_MS: intVar('Shed when the expected queue wait exceeds this, ms', { min: 0, max: 600_000 }),
  BALLAST_API_BURST_MS: intVar('A backlog forming after a short queue is judged against the deadlines this long, ms (0: never)', {
    min: 0,
    max: 600_000,
  }),
  BALLAST_API_WORKER_SLOTS: intVar('Conversions the workers run at once, system-wide', { min: 1 }),
  BALLAST_API_BODY_BUDGET_BYTES: intVar('Bytes of images held at once, over all requests; beyond it, 503', { min: 1 }),
  BALLAST_API_BROWNOUT: boolVar('Degrade rendition sets (and single images sent with degrade=true) under load before shedding', true),
  BALLAST_API_BROWNOUT_SETPOINT_MS: intVar(
    "The brownout dimmer's setpoint: the p95 response time it holds, ‰ of a request's deadline (default 600)",
    { min: 1, max: 600_000 },
  ),
  BALLAST_API_FAIR_SHARE: boolVar('Per-client fair share of the workers (jobs per client, costly requests per client and in all)', true),
  BALLAST_API_MAX_JOBS_PER_CLIENT: intVar('Jobs one anonymous client may have waiting or in progress (0: no bound); beyond it, 429', {
    min: 0,
  }),
  BALLAST_API_COSTLY_MS: intVar('Indicative cost from which a request counts as costly, ms', { min: 0, max: 3_600_000 }),
  BALLAST_API_MAX_COSTLY_PER_CLIENT: intVar('Costly requests one client may have in progress; beyond it, 429', { min: 1 }),
  BALLAST_API_MAX_COSTLY: intVar('Costly requests in progress over all clients; beyond it, 503', { min: 1 }),
  BALLAST_API_ANONYMOUS_COST_MS_PER_SEC: intVar(
    'Indicative conversion time one anonymous client (address) may book per second, ms/s (its cost budget; unset or 0: none); beyond it, 429',
    { min: 0 },
  ),
  BALLAST_API_ANONYMOUS_COST_BURST_MS: intVar(
    'Conversion time one anonymous client may book at once, ms: also its dearest request (422 beyond)',
    {
      min: 1,
    },
  ),
  BALLAST_API_TENANT_COST_MS_PER_SEC: intVar(
    'Indicative conversion time one tenant may book per second, ms/s (unset or 0: no budget); beyond it, 429',
    {
      min: 0,
    },
  ),
  BALLAST_API_TENANT_COST_BURST_MS: intVar('Conversion time one tenant may book at once, ms: also its dearest request (422 beyond)', {
    min: 1,
  }),
  BALLAST_API_TRUSTED_PROXIES: listVar(
    'Peers whose x-ballast-client header names the client (the gateways)',
    'a comma-separated list of IP addresses, CIDR ranges, or loopback, private, linklocal',
    trustedProxy,
  ),
} as const satisfies EnvSpec;

/** Read by a worker process (apps/worker/src/main.ts). */
export const WORKER_ENV = {
  BALLAST_WORKER_CONCURRENCY: intVar('Conversions at once', { min: 1, max: 256 }),
  BALLAST_WORKER_NAME: stringVar('Worker name', 'a name of letters, digits, ".", "_" or "-"', NAME),
  BALLAST_WORKER_PORT: portVar('Operational listener (/healthz, /readyz, /metrics)', 0),
  BALLAST_WORKER_MAX_AVIF_OUTPUT_PIXELS: intVar('Largest AVIF output, px', { min: 1 }),
  BALLAST_WORKER_NICE: intVar('CPU priority of the worker, as a nice value: 0 (as the other services) to 19 (lowest)', { min: 0, max: 19 }),
  BALLAST_WORKER_TIMEOUT_MS: intVar('Longest one conversion may run (a job’s deadline stops it sooner), ms', { min: 1, max: 600_000 }),
} as const satisfies EnvSpec;

/** The trusted-proxy list of the gateway: addresses, CIDR ranges or presets. */
function trustedProxy(raw: string): string | undefined {
  try {
    new TrustedProxies([raw]);
    return raw;
  } catch {
    return undefined;
  }
}

/**
 * The gateway's edge limits: read by the gateway run on its own and by `npm start` (the
 * embedded gateway). Unset, each takes the gateway's default (apps/README.md).
 */
export const EDGE_ENV = {
  BALLAST_GATEWAY_TRUSTED_PROXIES: listVar(
    'Peers whose forwarding headers are kept',
    'a comma-separated list of IP addresses, CIDR ranges, or loopback, private, linklocal',
    trustedProxy,
  ),
  BALLAST_GATEWAY_MAX_INFLIGHT: intVar('Requests forwarded at once; beyond it, 503', { min: 1 }),
  BALLAST_GATEWAY_MAX_PER_UPSTREAM: intVar('Requests in flight to one API server at once', { min: 1 }),
  BALLAST_GATEWAY_HOLD_REFUSED_MS: intVar(
    'Longest the gateway answers a repeated request refused with 429 itself, as Retry-After asked, ms (0: off)',
    {
      min: 0,
      max: 3_600_000,
    },
  ),
  BALLAST_GATEWAY_RATE_LIMIT_PER_SEC: intVar('Requests per second one client address may send (0: no limit); beyond it, 429', { min: 0 }),
  BALLAST_GATEWAY_RATE_LIMIT_BURST: intVar('Requests one client address may send back to back after a pause', { min: 1 }),
  BALLAST_GATEWAY_MAX_BODY_BYTES: intVar('Largest request body, bytes', { min: 1 }),
  BALLAST_GATEWAY_BODY_BUDGET_BYTES: intVar('Bytes of request bodies held at once, over all requests; beyond it, 503', { min: 1 }),
  BALLAST_GATEWAY_BODY_BUDGET_PER_CLIENT_BYTES: intVar('The most of the body budget one client address may hold', { min: 1 }),
  BALLAST_GATEWAY_BODY_TIMEOUT_MS: intVar('Time for a whole request body, ms; then 408', { min: 1, max: 600_000 }),
  BALLAST_GATEWAY_MIN_BODY_BYTES_PER_SEC: intVar('Least average upload rate after the first 2 s, bytes/s (0: none); then 408', { min: 0 }),
  BALLAST_GATEWAY_HEADERS_TIMEOUT_MS: intVar('Time for a request’s headers, ms; then 408 and close', { min: 100, max: 600_000 }),
  BALLAST_GATEWAY_REQUEST_TIMEOUT_MS: intVar('Time for a whole request, headers and body, ms', { min: 100, max: 3_600_000 }),
  BALLAST_GATEWAY_IDLE_TIMEOUT_MS: intVar('An idle keep-alive connection is closed after this, ms', { min: 1, max: 600_000 }),
  BALLAST_GATEWAY_MAX_CONNECTIONS: intVar('Connections held at once; beyond it new ones are closed', { min: 1 }),
  BALLAST_GATEWAY_MAX_CONNECTIONS_PER_CLIENT: intVar('Connections one client address may hold at once', { min: 1 }),
  BALLAST_GATEWAY_UPSTREAM_TIMEOUT_MS: intVar('Longest wait for an API server’s answer, ms (each request waits its deadline + 1 s)', {
    min: 1,
    max: 600_000,
  }),
} as const satisfies EnvSpec;

/** Read by the gateway run on its own (apps/gateway/src/main.ts), besides {@link EDGE_ENV}. */
export const GATEWAY_ENV = {
  BALLAST_GATEWAY_UPSTREAMS: {
    ...listVar('API servers to balance over', 'a comma-separated list of http:// URLs (origin only)', httpOrigin),
    required: true,
  },
  BALLAST_GATEWAY_STRATEGY: enumVar('Balancing strategy', GATEWAY_STRATEGIES, 'p2c'),
  BALLAST_GATEWAY_PORT: portVar('Public port', 8080),
  BALLAST_GATEWAY_HOST: stringVar('Address to listen on', 'a host name or IP address', HOST, '127.0.0.1'),
  BALLAST_GATEWAY_OPS_PORT: portVar('Operational listener (/healthz, /readyz, /metrics, /gateway/stats)', 9080),
  BALLAST_GATEWAY_OPS_HOST: stringVar('Address of the operational listener', 'a host name or IP address', HOST, '127.0.0.1'),
} as const satisfies EnvSpec;

/** Read by `npm start` (scripts/start.ts). */
export const START_ENV = {
  BALLAST_PORT: portVar('Gateway port of the embedded system (a free one if taken)', 8080),
  BALLAST_OPS_PORT: portVar('Operational listener of the embedded system’s gateway (a free one if taken)', 9080),
  BALLAST_NO_RELAUNCH: boolVar('Run as launched, without re-launching with a larger initial heap', false),
} as const satisfies EnvSpec;

/** Read wherever usage is recorded, shipped, billed or shown (workers, API servers, `npm start`, the usage commands): see apps/usage. */
export const USAGE_ENV = {
  BALLAST_USAGE_DIR: stringVar(
    'Root of the local usage logs (one directory per process under it)',
    'a directory path',
    /^\S(.*\S)?$/,
    'data/usage/log',
  ),
  BALLAST_USAGE_DATABASE: stringVar(
    'Usage batch store: a PostgreSQL URL, or the directory of an in-process PGlite database',
    'a postgres:// URL or a directory path',
    /^\S+$/,
    'data/usage/store',
  ),
  BALLAST_USAGE_SHIP: enumVar(
    'Who ships this process’s usage log: the process itself, or a separate shipper process',
    ['in-process', 'external'],
    'in-process',
  ),
  BALLAST_USAGE_COLD_DIR: stringVar('Cold storage root (object-store bucket layout)', 'a directory path', /^\S(.*\S)?$/, 'data/usage/cold'),
  BALLAST_USAGE_BUCKET: stringVar('Cold storage bucket name', 'an S3 bucket name', /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'ballast-usage'),
  BALLAST_USAGE_BILLING_DIR: stringVar('Where invoices are written', 'a directory path', /^\S(.*\S)?$/, 'data/usage/billing'),
  BALLAST_USAGE_PRICES: stringVar('Price list file (JSON; see apps/usage/prices.json)', 'a file path', /^\S(.*\S)?$/),
  BALLAST_USAGE_CLOSE_AFTER_MS: intVar('How long after its end a period can be billed, ms', { min: 0, max: 7_776_000_000 }, 3_600_000),
  BALLAST_USAGE_SHIP_INTERVAL_MS: intVar('Pause of a shipper whose log has nothing new, ms', { min: 1, max: 600_000 }, 1000),
  BALLAST_USAGE_BATCH_RECORDS: intVar('Most records per shipped batch', { min: 1, max: 50_000 }, 1000),
} as const satisfies EnvSpec;

/** Identity: the management plane (apps/identity), its CLI, and API servers that require keys. */
export const IDENTITY_ENV = {
  BALLAST_IDENTITY_PORT: portVar('Management API port (npm start: a free one if taken)', 8090),
  BALLAST_IDENTITY_HOST: stringVar('Address the management API listens on', 'a host name or IP address', HOST, '127.0.0.1'),
  BALLAST_IDENTITY_DATABASE_URL: stringVar(
    'PostgreSQL of the management plane',
    'a postgres:// or postgresql:// URL',
    /^postgres(ql)?:\/\/\S+$/,
  ),
  BALLAST_IDENTITY_DATA_DIR: stringVar(
    'PGlite directory when no database URL is given (npm start: .ballast/identity)',
    'a directory path',
    /^\S+$/,
  ),
  BALLAST_IDENTITY_ADMIN_TOKEN: stringVar('Admin token of the management API', 'at least 16 characters, no spaces', /^\S{16,}$/),
  BALLAST_IDENTITY_URL: stringVar('Management API the CLI (npm run identity) talks to', 'an http:// or https:// URL', /^https?:\/\/\S+$/),
  BALLAST_API_IDENTITY: boolVar('API server: require API keys, verified from the identity feed on Redis', false),
} as const satisfies EnvSpec;

/** Every group above: the names every service knows. */
export const ALL_ENV: readonly EnvSpec[] = [
  COMMON_ENV,
  QUEUE_ENV,
  IMAGE_ENV,
  API_ENV,
  WORKER_ENV,
  EDGE_ENV,
  GATEWAY_ENV,
  START_ENV,
  USAGE_ENV,
  IDENTITY_ENV,
];

/** Every known variable name. */
export function knownVariables(): string[] {
  return ALL_ENV.flatMap((spec) => Object.keys(spec));
}

/**
 * Reads and validates `spec` from `env` against the whole catalogue (see {@link readEnv}).
 * `BALLAST_*` variables no service knows, and that are no likely typo, are written to
 * `warn` (one line each).
 * @throws {ConfigError} naming every malformed, out-of-range or missing variable, and every likely typo.
 */
export function loadEnv<S extends EnvSpec>(spec: S, env: NodeJS.ProcessEnv = process.env, warn?: (line: string) => void): EnvValues<S> {
  const report: EnvReport = { unknown: [] };
  const values = readEnv(spec, env, knownVariables(), report);
  for (const name of report.unknown) warn?.(`${name} is not a variable any Ballast service reads; it is ignored`);
  return values;
}

/** What {@link startService} gives a service's `main.ts`. */
export interface ServiceStart<S extends EnvSpec> {
  /** The validated variables of `spec` and of {@link COMMON_ENV}. */
  env: EnvValues<S & typeof COMMON_ENV>;
  /** The process's logger, at `BALLAST_LOG_LEVEL`. */
  logger: Logger;
}

/**
 * The start of every service's `main.ts`: validates `spec` (and `BALLAST_LOG_LEVEL`) from
 * the environment and makes the logger. A bad configuration is written to stderr, one
 * line per problem, and the process exits with status 1 before anything starts; unknown
 * `BALLAST_*` variables are logged as warnings.
 */
export function startService<S extends EnvSpec>(service: string, spec: S, env: NodeJS.ProcessEnv = process.env): ServiceStart<S> {
  let values: EnvValues<S & typeof COMMON_ENV>;
  const unknown: string[] = [];
  try {
    values = loadEnv({ ...COMMON_ENV, ...spec }, env, (line) => unknown.push(line));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${service}: ${error.message}\n`);
    process.exit(1);
  }
  const logger = createLogger({ level: values.BALLAST_LOG_LEVEL as LogLevel });
  for (const line of unknown) logger.warn({ service }, line);
  return { env: values, logger };
}
