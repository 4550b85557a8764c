import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { findPostgresBinDir, PostgresNotInstalledError, type PostgresServer, startPostgres } from './postgres.ts';
import { descendantsOf, isAlive, stillRunning } from './process.ts';

async function query(url: string, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe('startPostgres', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server.stop());

  it('runs a real PostgreSQL server on a loopback port', async () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.url).toBe(`postgres://postgres@127.0.0.1:${server.port}/postgres`);
    const [row] = await query(server.url, 'SELECT version() AS version, current_user AS who');
    expect(String(row?.version)).toMatch(/^PostgreSQL \d+/);
    expect(row?.who).toBe('postgres');
  });

  it('runs the server as the postgres user when the tests run as root', () => {
    if (process.getuid?.() !== 0) return;
    const owner = statSync(`${server.dir}/data`).uid;
    expect(owner).not.toBe(0);
    const status = spawnStatus(server.pid);
    expect(status.uid).toBe(owner);
  });

  it('creates databases, once each', async () => {
    const url = await server.createDatabase('ballast_test');
    expect(url).toBe(`postgres://postgres@127.0.0.1:${server.port}/ballast_test`);
    await query(url, 'CREATE TABLE t (v int)');
    await query(url, 'INSERT INTO t VALUES ($1)', [42]);
    expect(await server.createDatabase('ballast_test')).toBe(url); // already there: kept
    expect(await query(url, 'SELECT v FROM t')).toEqual([{ v: 42 }]);
    await expect(server.createDatabase('x"; DROP')).rejects.toThrow(/plain identifier/);
  });

  it('keeps its data across a crash and a restart on the same port', async () => {
    const url = await server.createDatabase('ballast_crash');
    await query(url, 'CREATE TABLE kept (v text)');
    await query(url, "INSERT INTO kept VALUES ('committed')");
    // A connection left open, its backend frozen as a busy machine may leave it: it has not
    // noticed the crash, and holds the shared memory until it is gone.
    const open = new pg.Client({ connectionString: url });
    open.on('error', () => {}); // the crash ends it
    await open.connect();
    const backend = Number((await open.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
    const pid = server.pid;
    const processes = descendantsOf(pid);
    expect(processes).toContain(backend);
    process.kill(backend, 'SIGSTOP');
    onTestFinished(() => {
      if (stillRunning([backend]).length > 0) process.kill(backend, 'SIGKILL'); // left behind: the crash did not reach it
    });
    await server.crash();
    expect(server.running).toBe(false);
    expect(isAlive(pid)).toBe(false);
    expect(stillRunning(processes)).toEqual([]); // every process of the server is gone, not only the postmaster
    await open.end().catch(() => {});
    await expect(query(url, 'SELECT 1')).rejects.toThrow();
    await server.restart();
    expect(await query(url, 'SELECT v FROM kept')).toEqual([{ v: 'committed' }]);
  });
});

describe('stop', () => {
  it('stops the server and removes its directory', { timeout: 60_000 }, async () => {
    const server = await startPostgres();
    const { pid, dir } = server;
    expect(isAlive(pid)).toBe(true);
    expect(existsSync(dir)).toBe(true);
    await server.stop();
    expect(server.running).toBe(false);
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await server.stop(); // idempotent
  });
});

describe('when the test process dies', () => {
  // Starting a cluster (initdb) in a child takes seconds, more on a busy machine.
  it('stops its postgres and removes its directory even when killed with SIGKILL (no exit handler runs)', { timeout: 90_000 }, async () => {
    const fixture = fileURLToPath(new URL('./fixtures/start-postgres-and-wait.ts', import.meta.url));
    const child = spawn(process.execPath, ['--conditions=@ballast/source', fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0] as string);
      });
      child.once('exit', (code) => reject(new Error(`fixture exited early with code ${code}`)));
    });
    const { pid, port, dir } = JSON.parse(line) as { pid: number; port: number; dir: string };
    expect(await query(`postgres://postgres@127.0.0.1:${port}/postgres`, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
    child.kill('SIGKILL');
    const deadline = Date.now() + 15_000;
    while ((isAlive(pid) || existsSync(dir)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('findPostgresBinDir', () => {
  it('says exactly how to install PostgreSQL when it is missing', () => {
    vi.stubEnv('PATH', '/nonexistent');
    vi.stubEnv('BALLAST_PG_BINDIR', '');
    expect(() => findPostgresBinDir('/nonexistent')).toThrow(PostgresNotInstalledError);
    expect(() => findPostgresBinDir('/nonexistent')).toThrow(/apt-get install -y postgresql/);
  });

  it('finds the Debian layout, PostgreSQL 15 first', () => {
    if (!existsSync('/usr/lib/postgresql')) return;
    expect(findPostgresBinDir()).toMatch(/^\/usr\/lib\/postgresql\/\d+\/bin$/);
  });
});

function spawnStatus(pid: number): { uid: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(text)?.[1]) };
}
