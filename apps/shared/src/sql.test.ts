import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isInvalidOptionError } from '@ballast/common';
import { type PostgresServer, startPostgres } from '@ballast/test/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgliteSql, postgresSql, type Sql, sqlString } from './sql.ts';

let pg: PostgresServer;
let dir: string;
let database = 0;

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'ballast-sql-'));
});
afterAll(async () => {
  await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const engines: Array<[string, () => Promise<Sql>]> = [
  ['PostgreSQL', async () => postgresSql({ url: await pg.createDatabase(`sql_${++database}`) })],
  ['PGlite', () => pgliteSql()],
];

// PGlite takes a few seconds to start, many more on a loaded machine.
describe.each(engines)('one SQL interface on %s', { timeout: 120_000 }, (kind, open) => {
  it('runs scripts, statements with parameters, counts and transactions alike', async () => {
    await using sql = await open();
    expect(sql.kind).toBe(kind === 'PGlite' ? 'pglite' : 'postgres');
    await sql.exec('CREATE TABLE t (id int PRIMARY KEY, name text); CREATE INDEX t_name ON t (name)');
    expect(
      await sql.run('INSERT INTO t SELECT * FROM unnest($1::int[], $2::text[]) ON CONFLICT DO NOTHING', [
        [1, 2, 3],
        ['a', "o'b", 'c'],
      ]),
    ).toBe(3);
    expect(await sql.run('INSERT INTO t VALUES (1, $1) ON CONFLICT DO NOTHING', ['again'])).toBe(0);
    expect(await sql.query<{ id: number; name: string }>('SELECT id, name FROM t WHERE id >= $1 ORDER BY id', [2])).toEqual([
      { id: 2, name: "o'b" },
      { id: 3, name: 'c' },
    ]);
    // Committed when the function resolves, rolled back when it throws.
    expect(await sql.transaction(async (tx) => tx.run('UPDATE t SET name = upper(name)'))).toBe(3);
    await expect(
      sql.transaction(async (tx) => {
        await tx.run('DELETE FROM t');
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await sql.query('SELECT name FROM t ORDER BY id')).toEqual([{ name: 'A' }, { name: "O'B" }, { name: 'C' }]);
    const csv = join(dir, `${kind}.csv`);
    await sql.copyToCsv(`SELECT id, name FROM t WHERE name <> ${sqlString("O'B")} ORDER BY id`, csv);
    expect(readFileSync(csv, 'utf8')).toBe('id,name\n1,A\n3,C\n');
    await sql.close();
    await sql.close(); // a second close (and the disposal after it) does nothing
  });
});

describe('postgresSql', () => {
  it('validates its pool options, naming them', () => {
    for (const [options, option] of [
      [{ maxConnections: 0 }, 'maxConnections'],
      [{ connectTimeoutMs: 1.5 }, 'connectTimeoutMs'],
      [{ statementTimeoutMs: -1 }, 'statementTimeoutMs'],
    ] as const) {
      let error: unknown;
      try {
        postgresSql({ url: 'postgres://127.0.0.1:1/x', ...options });
      } catch (e) {
        error = e;
      }
      expect(isInvalidOptionError(error), option).toBe(true);
      expect((error as { option: string }).option).toBe(option);
    }
  });

  it('fails a statement that runs past statementTimeoutMs', async () => {
    await using sql = postgresSql({ url: await pg.createDatabase(`sql_${++database}`), statementTimeoutMs: 50 });
    await expect(sql.query('SELECT pg_sleep(5)')).rejects.toThrow(/statement timeout/);
    expect(await sql.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });
});
