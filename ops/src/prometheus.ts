/**
 * Runs a real Prometheus (Debian's `prometheus`; `node scripts/ensure-system-deps.ts
 * promtool` installs it) scraping a running reference system, with this directory's
 * rules and alerts:
 *
 *   npm run prometheus -w ops -- --gateway 127.0.0.1:<ops port> --api 127.0.0.1:<ops>,127.0.0.1:<ops> [--worker host:port,…] [--port 9090]
 *
 * `npm start` prints this command with its own addresses. The targets are the services'
 * operational listeners (`/metrics`). `--check` waits until every target is scraped and
 * the front-door metrics are in, prints what Prometheus sees, and stops (a smoke test).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Targets by job, as `host:port`. */
export interface PrometheusTargets {
  gateway: string[];
  api: string[];
  worker: string[];
}

/** A Prometheus this module started. */
export interface RunningPrometheus {
  readonly url: string;
  readonly dir: string;
  /** Resolves once every target has been scraped successfully and `metric` has samples. */
  ready(
    metric?: string,
    timeoutMs?: number,
  ): Promise<{ targets: Array<{ job: string; instance: string; health: string }>; series: number }>;
  stop(): Promise<void>;
}

const HOST_PORT = /^[\w.-]+:\d{1,5}$/;

/** Parses `--gateway a:1 --api b:2,c:3 --worker d:4 --port 9090 --check`. */
export function parseArgs(argv: readonly string[]): { targets: PrometheusTargets; port: number; check: boolean } {
  const targets: PrometheusTargets = { gateway: [], api: [], worker: [] };
  let port = 9090;
  let check = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const job = arg.slice(2);
    if (arg === '--check') check = true;
    else if (arg === '--port') {
      port = Number(argv[++i]);
      if (!Number.isInteger(port) || port < 0 || port > 65_535)
        throw new Error(`--port takes a port number, got ${JSON.stringify(argv[i])}`);
    } else if (job === 'gateway' || job === 'api' || job === 'worker') {
      for (const target of (argv[++i] ?? '').split(',').filter(Boolean)) {
        const hostPort = target.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
        if (!HOST_PORT.test(hostPort)) throw new Error(`--${job} takes host:port[,host:port…], got ${JSON.stringify(target)}`);
        targets[job].push(hostPort);
      }
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}; expected --gateway, --api, --worker, --port or --check`);
  }
  if (targets.gateway.length + targets.api.length + targets.worker.length === 0) {
    throw new Error('no targets: give at least --gateway host:port (the gateway operational listener, which npm start prints)');
  }
  return { targets, port, check };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Starts Prometheus with this directory's configuration and rules, scraping `targets`. */
export async function startPrometheus(targets: PrometheusTargets, port = 0): Promise<RunningPrometheus> {
  const source = fileURLToPath(new URL('../prometheus/', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'ballast-prometheus-'));
  for (const file of ['prometheus.yml', 'recording.rules.yml', 'alerts.rules.yml']) cpSync(join(source, file), join(dir, file));
  mkdirSync(join(dir, 'targets'));
  for (const job of ['gateway', 'api', 'worker'] as const) {
    writeFileSync(join(dir, 'targets', `${job}.json`), JSON.stringify([{ targets: targets[job], labels: { service: job } }]));
  }
  const listen = port === 0 ? await freePort() : port;
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${listen}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (error) =>
    console.error(`prometheus could not start: ${error.message}; run: node scripts/ensure-system-deps.ts promtool`),
  );
  const url = `http://127.0.0.1:${listen}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const api = async <T>(path: string): Promise<T> => ((await (await fetch(`${url}${path}`)).json()) as { data: T }).data;
  const ready: RunningPrometheus['ready'] = async (metric = 'ballast_frontdoor_requests_total', timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const { activeTargets } = await api<{ activeTargets: Array<{ labels: { job: string; instance: string }; health: string }> }>(
          '/api/v1/targets',
        );
        const series = await api<unknown[]>(`/api/v1/series?match[]=${encodeURIComponent(metric)}`);
        const all = activeTargets.map((t) => ({ job: t.labels.job, instance: t.labels.instance, health: t.health }));
        if (all.length > 0 && all.every((t) => t.health === 'up') && series.length > 0) return { targets: all, series: series.length };
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`Prometheus at ${url} did not scrape every target within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  return { url, dir, ready, stop };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(String((error as Error).message));
    process.exit(2);
  }
  const prometheus = await startPrometheus(parsed.targets, parsed.port);
  const stop = async (): Promise<void> => {
    await prometheus.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (parsed.check) {
    try {
      const seen = await prometheus.ready();
      console.log(
        `Prometheus ${prometheus.url} scrapes ${seen.targets.map((t) => `${t.job} ${t.instance} ${t.health}`).join(', ')}; ${seen.series} front-door series`,
      );
    } finally {
      await stop();
    }
  } else {
    console.log(`Prometheus on ${prometheus.url} (config and data in ${prometheus.dir}, removed on Ctrl-C)
  targets ${prometheus.url}/targets   alerts ${prometheus.url}/alerts   rules ${prometheus.url}/rules
  yield   ${prometheus.url}/graph?g0.expr=ballast%3Afrontdoor_yield%3Aratio_rate5m&g0.tab=0
  p99     ${prometheus.url}/graph?g0.expr=ballast%3Afrontdoor_latency_seconds%3Ap99_rate5m&g0.tab=0`);
  }
}
