/**
 * Real PostgreSQL for tests: `initdb` a fresh cluster in a temporary directory, start
 * `postgres` on a free loopback port, wait until it accepts connections, and stop it
 * (removing the directory) afterwards.
 *
 * PostgreSQL refuses to run as root: when the tests run as root, the directory is
 * handed to the `postgres` system user and `initdb` and `postgres` run as that user.
 *
 * No process outlives the test run: `stop()` ends the server, an `exit` handler ends
 * any left running, and a tiny shell watchdog beside each server stops it and removes
 * its directory if the test process dies without running its handlers (a crash,
 * SIGKILL, a timeout).
 *
 * @example
 * ```ts
 * const pg = await startPostgres();
 * afterAll(() => pg.stop());
 * const url = await pg.createDatabase('identity'); // postgres://postgres@127.0.0.1:<port>/identity
 * ```
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { descendantsOf, onFreePort, stillRunning, superviseProcess, type TestServer, waitFor } from './process.ts';

/**
 * One running PostgreSQL server: `url` is `postgres://postgres@host:port/postgres` (the
 * superuser, trust authentication on loopback), `pid` the postmaster's, `dir` holds
 * `data/` (the cluster) and `socket/` (its Unix socket).
 */
export interface PostgresServer extends TestServer, AsyncDisposable {
  /** Creates a database (if it does not exist yet) and returns its connection URL. */
  createDatabase(name: string): Promise<string>;
  /**
   * Kills the postmaster and every process it started at once with SIGKILL, as a crash
   * would, and waits until all of them have exited (a backend left running would still
   * hold the shared memory, and a restart would refuse to start).
   */
  crash(): Promise<void>;
  /** Starts the server again on the same port and data (after `crash` or `stop`). */
  restart(): Promise<void>;
  /**
   * Stops the server (fast shutdown: open transactions are rolled back, clients
   * disconnected; SIGKILL after 10 s) and removes its directory. Idempotent.
   */
  stop(): Promise<void>;
  /** Stops the server but keeps its directory, so {@link PostgresServer.restart} finds its data. */
  halt(): Promise<void>;
}

/** Options for {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Extra server settings, passed as `-c name=value`, e.g. `{ max_connections: '20' }`. */
  settings?: Record<string, string>;
  /**
   * Flush writes to disk. Off by default: a test server loses nothing when its process
   * is killed either way (only an operating-system crash would), and on is far slower.
   * @default false
   */
  fsync?: boolean;
  /** How long to wait for the server to accept connections, ms. @default 30000 */
  startTimeoutMs?: number;
}

const HOST = '127.0.0.1';

/** Thrown when the PostgreSQL server programs (`initdb`, `postgres`) are not installed. */
export class PostgresNotInstalledError extends Error {
  constructor() {
    super(
      "PostgreSQL's server programs (initdb, postgres) were not found in /usr/lib/postgresql/<version>/bin or on PATH. " +
        "Ballast's tests run a real PostgreSQL. Install it with:\n" +
        '  sudo apt-get update && sudo apt-get install -y postgresql   (Debian, Ubuntu)\n' +
        '  brew install postgresql@15                                  (macOS)\n' +
        'On a Debian machine running as root, `npm test` installs it itself.',
    );
    this.name = 'PostgresNotInstalledError';
  }
}

/**
 * Directory holding `initdb` and `postgres`: `BALLAST_PG_BINDIR` when set, else
 * Debian's `/usr/lib/postgresql/<version>/bin` (15 preferred, else the newest), else the
 * first directory on PATH that has both. Throws {@link PostgresNotInstalledError}.
 *
 * @param debianRoot Where Debian installs the versions. @default '/usr/lib/postgresql'
 */
export function findPostgresBinDir(debianRoot = '/usr/lib/postgresql'): string {
  const candidates: string[] = [];
  if (process.env.BALLAST_PG_BINDIR) candidates.push(process.env.BALLAST_PG_BINDIR);
  let versions: string[] = [];
  try {
    versions = readdirSync(debianRoot).sort((a, b) => (a === '15' ? -1 : b === '15' ? 1 : Number(b) - Number(a)));
  } catch {
    // Not a Debian layout.
  }
  candidates.push(...versions.map((v) => join(debianRoot, v, 'bin')));
  candidates.push(...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== ''));
  for (const dir of candidates) {
    try {
      accessSync(join(dir, 'initdb'), constants.X_OK);
      accessSync(join(dir, 'postgres'), constants.X_OK);
      return dir;
    } catch {
      // Not here.
    }
  }
  throw new PostgresNotInstalledError();
}

/** Starts a PostgreSQL server on a free loopback port in a fresh temporary cluster. */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = findPostgresBinDir();
  const owner = serverUser();
  const dir = mkdtempSync(join(tmpdir(), 'ballast-postgres-'));
  const data = join(dir, 'data');
  const socket = join(dir, 'socket');
  mkdirSync(socket);
  if (owner) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(socket, owner.uid, owner.gid);
  }
  try {
    const init = spawnSync(
      join(bin, 'initdb'),
      ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'],
      { encoding: 'utf8', ...(owner ?? {}) },
    );
    if (init.status !== 0) throw new Error(`initdb failed (exit ${init.status ?? init.signal}): ${init.stderr || init.error}`);
    const settings = { fsync: options.fsync ? 'on' : 'off', ...options.settings };
    return await launch(bin, dir, settings, owner, options.startTimeoutMs ?? 30_000);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

// ---------------------------------------------------------------------------

interface Owner {
  uid: number;
  gid: number;
}

/** The `postgres` system user when running as root (PostgreSQL refuses root), else nobody to switch to. */
function serverUser(): Owner | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('running as root, PostgreSQL needs a `postgres` system user to run as; the Debian `postgresql` package creates it');
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function launch(
  bin: string,
  dir: string,
  settings: Record<string, string>,
  owner: Owner | undefined,
  startTimeoutMs: number,
): Promise<PostgresServer> {
  return onFreePort(HOST, (port) => manage(bin, dir, port, settings, owner, startTimeoutMs));
}

async function manage(
  bin: string,
  dir: string,
  port: number,
  settings: Record<string, string>,
  owner: Owner | undefined,
  startTimeoutMs: number,
): Promise<PostgresServer> {
  const args = ['-D', join(dir, 'data'), '-p', String(port), '-h', HOST, '-k', join(dir, 'socket')];
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
  let log = '';
  const proc = superviseProcess({
    what: `postgres on ${HOST}:${port}`,
    spawn: () => {
      log = '';
      const child = spawn(join(bin, 'postgres'), args, { stdio: ['ignore', 'ignore', 'pipe'], ...(owner ?? {}) });
      child.stderr?.on('data', (chunk: Buffer) => {
        if (log.length < 20_000) log += chunk.toString();
      });
      return child;
    },
    ready: () => ready(bin, port),
    startTimeoutMs,
    exitDetail: () => `: ${log.trim().split('\n').slice(-3).join(' | ')}`,
    watchdog: { signal: 'QUIT', removeDir: dir },
    crash: (pid, exited) => killServer(pid, exited, dir),
    removeDirOnExit: dir,
  });
  const server: PostgresServer = {
    host: HOST,
    port,
    url: `postgres://postgres@${HOST}:${port}/postgres`,
    dir,
    get pid() {
      return proc.pid;
    },
    get running() {
      return proc.running;
    },
    async createDatabase(name) {
      if (!/^[A-Za-z_][\w-]{0,62}$/.test(name)) throw new Error(`database name must be a plain identifier, got ${JSON.stringify(name)}`);
      await psql(bin, port, `SELECT 1 FROM pg_database WHERE datname = '${name}'`).then(async (found) => {
        if (found.trim() !== '1') await psql(bin, port, `CREATE DATABASE "${name}"`);
      });
      return `postgres://postgres@${HOST}:${port}/${name}`;
    },
    crash: () => proc.crash(),
    async restart() {
      await proc.crash();
      await proc.start();
    },
    // Fast shutdown: the postmaster exits once its children have.
    halt: () => proc.stop('SIGINT', 10_000),
    async stop() {
      proc.forget();
      await server.halt();
      rmSync(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]: () => server.stop(),
  };
  await proc.start();
  return server;
}

/**
 * Kills the postmaster `pid` and every process it started, and waits until all are gone.
 * Every backend and auxiliary process is a child of the postmaster, each in its own
 * session (PostgreSQL calls setsid() in every child), so killing the postmaster's process
 * group would not reach them: they are listed and killed one by one. Stopped first, the
 * postmaster cannot start another one between the listing and the kill.
 */
async function killServer(pid: number, exited: Promise<void>, dir: string): Promise<void> {
  try {
    process.kill(pid, 'SIGSTOP');
  } catch {
    // Exited already: its children are listed and killed all the same.
  }
  const processes = [pid, ...descendantsOf(pid)];
  for (const p of processes) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await exited;
  await waitFor(`every process of the PostgreSQL server in ${dir} to exit`, 60_000, async () => stillRunning(processes).length === 0);
}

function ready(bin: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(join(bin, 'pg_isready'), ['-q', '-h', HOST, '-p', String(port), '-U', 'postgres', '-t', '1'], (error) => resolve(!error));
  });
}

function psql(bin: string, port: number, sql: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      join(bin, 'psql'),
      ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', HOST, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql],
      { encoding: 'utf8' },
      (error, stdout, stderr) =>
        error ? reject(new Error(`psql ${JSON.stringify(sql)} failed: ${stderr || error.message}`)) : resolve(stdout),
    );
  });
}
