/**
 * The distributed deployment as data: every Ballast service process, the `BALLAST_*`
 * variables it runs with, and the ports it listens on. `npm run start:distributed` starts
 * these on one machine (free loopback ports); `compose.yaml` describes the same deployment
 * over separate hosts, and a test keeps the two in agreement.
 */
import {
  API_ENV,
  EDGE_ENV,
  type EnvSpec,
  GATEWAY_ENV,
  IDENTITY_ENV,
  IMAGE_ENV,
  loadEnv,
  QUEUE_ENV,
  USAGE_ENV,
  WORKER_ENV,
} from '@ballast/app-shared';
import { InvalidOptionError, integer } from '@ballast/common';
import { NODE_SERVICES, type NodeServiceKind } from './processes.ts';

/** The variables each kind of service reads (what its `main.ts` validates at start). */
export const SERVICE_ENV: Readonly<Record<NodeServiceKind, EnvSpec>> = {
  identity: { ...QUEUE_ENV, ...IDENTITY_ENV },
  api: { ...QUEUE_ENV, ...IMAGE_ENV, ...API_ENV, ...IDENTITY_ENV, ...USAGE_ENV },
  worker: { ...QUEUE_ENV, ...IMAGE_ENV, ...WORKER_ENV, ...USAGE_ENV },
  'usage-shipper': USAGE_ENV,
  gateway: { ...GATEWAY_ENV, ...EDGE_ENV, ...IMAGE_ENV },
};

/** Where the services find what they share: Redis, PostgreSQL, disk, the admin secret. */
export interface Infrastructure {
  /** `host:port,…` of the Sentinels. */
  sentinels: string;
  /** The name the Sentinels monitor. @default 'ballast' */
  masterName?: string;
  /** PostgreSQL database of the management plane (`postgres://…`). */
  identityDatabaseUrl: string;
  /** PostgreSQL database of the usage batch store (`postgres://…`). */
  usageDatabaseUrl: string;
  /** Directory each worker machine keeps its usage log under (`<usageRoot>/<worker>`). */
  usageRoot: string;
  /** The management API's admin token (at least 16 characters). */
  adminToken: string;
}

/** How many of each service, where they listen, and what every service gets besides. */
export interface TopologyOptions {
  /** API servers. @default 3 */
  apis?: number;
  /** Workers, each with its usage shipper. @default 2 */
  workers?: number;
  /** Conversions at once per worker. @default 1 */
  workerConcurrency?: number;
  /** The host name another service reaches `service` at. @default '127.0.0.1' */
  hostOf?: (service: string) => string;
  /** The address every listener binds. @default '127.0.0.1' */
  bindHost?: string;
  /**
   * The port `service` listens on for `what` (`public`, `ops`), given the port it takes
   * in the reference deployment (`canonical`). @default the canonical port
   */
  port?: (service: string, what: 'public' | 'ops', canonical: number) => number;
  /** Variables given to every service (where its kind reads them), e.g. `BALLAST_LOG_LEVEL`. */
  env?: Record<string, string>;
}

/** One service process of the deployment. */
export interface ServiceSpec {
  readonly name: string;
  readonly kind: NodeServiceKind;
  /** Its `BALLAST_*` variables, all of them read by its kind. */
  readonly env: Readonly<Record<string, string>>;
  /** Ports it listens on, by role. */
  readonly ports: Readonly<{ public?: number; ops?: number }>;
  /** Services that must be up before it starts. */
  readonly after: readonly string[];
}

/** Ports of the reference deployment (`compose.yaml`): public listeners, then operational ones. */
export const CANONICAL_PORTS = {
  gateway: 8080,
  gatewayOps: 9080,
  identity: 8090,
  /** API server i (from 1) listens on 8080 + i, its operational listener on 9080 + i. */
  api: 8080,
  apiOps: 9080,
  /** Worker i (from 1) has its operational listener on 9090 + i. */
  workerOps: 9090,
} as const;

/**
 * The deployment's service processes in start order: the management plane, the workers
 * and their usage shippers, the API servers, the gateway.
 * @throws {InvalidOptionError} for a bad count, {@link ConfigError} when a service's variables would not pass its own validation.
 */
export function distributedServices(infra: Infrastructure, options: TopologyOptions = {}): ServiceSpec[] {
  const apis = integer('apis', options.apis ?? 3, { min: 1, max: 64 });
  const workers = integer('workers', options.workers ?? 2, { min: 1, max: 64 });
  const concurrency = integer('workerConcurrency', options.workerConcurrency ?? 1, { min: 1, max: 256 });
  if (infra.adminToken.length < 16) throw new InvalidOptionError('adminToken', 'at least 16 characters', '(too short)');
  const hostOf = options.hostOf ?? (() => '127.0.0.1');
  const bind = options.bindHost ?? '127.0.0.1';
  const port = options.port ?? ((_s: string, _w: 'public' | 'ops', canonical: number) => canonical);
  const redis = {
    BALLAST_REDIS_SENTINELS: infra.sentinels,
    BALLAST_REDIS_MASTER: infra.masterName ?? 'ballast',
    BALLAST_REDIS_MIN_REPLICAS: '1',
  };
  const usage = { BALLAST_USAGE_DATABASE: infra.usageDatabaseUrl };
  const specs: ServiceSpec[] = [];
  const add = (name: string, kind: NodeServiceKind, env: Record<string, string>, ports: ServiceSpec['ports'], after: string[]) => {
    specs.push({ name, kind, env: withCommon(kind, env, options.env), ports, after });
  };

  const identityPort = port('identity', 'public', CANONICAL_PORTS.identity);
  add(
    'identity',
    'identity',
    {
      ...redis,
      BALLAST_IDENTITY_PORT: String(identityPort),
      BALLAST_IDENTITY_HOST: bind,
      BALLAST_IDENTITY_DATABASE_URL: infra.identityDatabaseUrl,
      BALLAST_IDENTITY_ADMIN_TOKEN: infra.adminToken,
    },
    { public: identityPort },
    [],
  );
  for (let i = 1; i <= workers; i++) {
    const name = `worker-${i}`;
    const logRoot = `${infra.usageRoot}/${name}`;
    const ops = port(name, 'ops', CANONICAL_PORTS.workerOps + i);
    add(
      name,
      'worker',
      {
        ...redis,
        ...usage,
        BALLAST_WORKER_NAME: name,
        BALLAST_WORKER_PORT: String(ops),
        BALLAST_WORKER_CONCURRENCY: String(concurrency),
        BALLAST_USAGE_DIR: logRoot,
        BALLAST_USAGE_SHIP: 'external',
      },
      { ops },
      [],
    );
    add(`usage-shipper-${i}`, 'usage-shipper', { ...usage, BALLAST_USAGE_DIR: logRoot }, {}, [name]);
  }
  const upstreams: string[] = [];
  for (let i = 1; i <= apis; i++) {
    const name = `api-${i}`;
    const pub = port(name, 'public', CANONICAL_PORTS.api + i);
    const ops = port(name, 'ops', CANONICAL_PORTS.apiOps + i);
    upstreams.push(`http://${hostOf(name)}:${pub}`);
    add(
      name,
      'api',
      {
        ...redis,
        ...usage,
        BALLAST_API_NAME: name,
        BALLAST_API_PORT: String(pub),
        BALLAST_API_OPS_PORT: String(ops),
        BALLAST_API_HOST: bind,
        BALLAST_API_IDENTITY: 'true',
        BALLAST_API_WORKER_SLOTS: String(workers * concurrency),
      },
      { public: pub, ops },
      ['identity', ...specs.filter((s) => s.kind === 'worker').map((s) => s.name)],
    );
  }
  const gw = port('gateway', 'public', CANONICAL_PORTS.gateway);
  const gwOps = port('gateway', 'ops', CANONICAL_PORTS.gatewayOps);
  add(
    'gateway',
    'gateway',
    {
      BALLAST_GATEWAY_UPSTREAMS: upstreams.join(','),
      BALLAST_GATEWAY_PORT: String(gw),
      BALLAST_GATEWAY_OPS_PORT: String(gwOps),
      BALLAST_GATEWAY_HOST: bind,
      BALLAST_GATEWAY_OPS_HOST: bind,
    },
    { public: gw, ops: gwOps },
    specs.filter((s) => s.kind === 'api').map((s) => s.name),
  );
  return specs;
}

/**
 * `env` plus the variables of `common` that `kind` reads, checked as the service will
 * check them: every variable must be one `kind` reads and pass its validation.
 */
function withCommon(kind: NodeServiceKind, env: Record<string, string>, common: Record<string, string> = {}): Record<string, string> {
  const spec = SERVICE_ENV[kind];
  const merged: Record<string, string> = { ...env };
  for (const [name, value] of Object.entries(common)) if (name in spec || name === 'BALLAST_LOG_LEVEL') merged[name] ??= value;
  for (const name of Object.keys(env)) {
    if (!(name in spec)) throw new InvalidOptionError(`${kind}.env`, `variables a ${kind} reads`, name);
  }
  loadEnv(spec, merged);
  return merged;
}

/** The Node command line of `kind`: flags, then its entry point (relative to the repository root). */
export function serviceCommand(kind: NodeServiceKind): string[] {
  const { main, flags } = NODE_SERVICES[kind];
  return [...flags, '--conditions=@ballast/source', main];
}
