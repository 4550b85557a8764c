/**
 * Runs every example as its own process, as `npm run example -- <name>` does, and checks
 * what it printed: the examples never rot. Each starts its own loopback servers and exits
 * by itself; a hung example fails its test when the time runs out.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(import.meta.dirname, '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[] = []): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=@ballast/source', join(dir, file), ...args],
      { cwd: dir, timeout: 60_000, killSignal: 'SIGKILL' },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

/** Runs the example and checks it exited cleanly; returns its output. */
async function example(name: string): Promise<string> {
  const { code, stdout, stderr } = await run(`${name}.ts`);
  expect(stderr, `${name} wrote to stderr`).toBe('');
  expect(code, `${name} exited with ${code}:\n${stdout}`).toBe(0);
  return stdout;
}

const numbers = (text: string, pattern: RegExp): number[] => {
  const match = pattern.exec(text);
  if (match === null) throw new Error(`no ${pattern} in:\n${text}`);
  return match.slice(1).map(Number);
};

describe('examples', () => {
  it('has a test for every example', () => {
    const examples = readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('.config.ts'));
    expect(examples.sort()).toEqual(
      ['backpressure', 'circuit-breaker', 'common', 'composed', 'failure-detector', 'load-balancer', 'partitioning', 'retry'].map(
        (n) => `${n}.ts`,
      ),
    );
  });

  it('load-balancer: peak-EWMA sends fewer requests to the slow upstream', async () => {
    const out = await example('load-balancer');
    const [a, b, c] = numbers(out, /a=(\d+) b=(\d+) c=(\d+)/) as [number, number, number];
    expect(a + b + c).toBe(200);
    expect(c).toBeLessThan(a);
    expect(c).toBeLessThan(b);
    expect(out).toContain('in flight after the run: 0');
  });

  it('backpressure: 429 with RateLimit headers per key, 503 for a burst beyond the limit and queue', async () => {
    const out = await example('backpressure');
    expect(out).toContain('one key, 7 requests: 200 200 200 200 200 429 429');
    expect(out).toContain('RateLimit-Policy: "per-key";q=5;w=60');
    expect(out).toMatch(/RateLimit: "per-key";r=0;t=\d+, Retry-After: \d+/);
    expect(out).toContain('burst of 20: 4 running, 4 queued, 12 shed');
    expect(out).toContain('a shed answer: 503 Retry-After 1 {"error":{"reason":"queueFull","code":"ERR_BALLAST_SHED"');
    expect(out).toContain('served once the work finished: 8');
  });

  it('circuit-breaker: opens on failures, refuses with 503 + Retry-After without calling the dependency, closes again', async () => {
    const out = await example('circuit-breaker');
    expect(out).toMatch(/inventory down:\n( {2}GET \/stock\/A-1 -> 502\n)+circuit "inventory" opened\n/);
    expect(out).toContain('GET /stock/A-1 -> 503 (Retry-After 1)');
    const [calls] = numbers(out, /inventory was called (\d+) times for 5 requests/) as [number];
    expect(calls).toBeLessThan(5);
    expect(out).toContain('"code":"ERR_BALLAST_CIRCUIT_OPEN"');
    expect(out).toMatch(
      /inventory back:\ncircuit "inventory" closed\n {2}GET \/stock\/A-1 -> 200\n {2}GET \/stock\/A-1 -> 200\nstate: closed/,
    );
  });

  it('retry: retries a flaky upstream, waits out Retry-After, returns the last answer of a dead one', async () => {
    const out = await example('retry');
    expect(out).toContain('-> 200 ok after 3 attempts');
    expect(out).toContain('attempt 1 failed, retrying in 1000 ms');
    expect(out).toContain('-> 200 ok after 2 attempts, waited at least 1 s');
    expect(out).toContain("-> 503 unavailable: the server's last answer, after 3 attempts");
    expect(out).toContain('stats: {"calls":3,"attempts":8,"retries":5,"successes":2,"giveUps":1}');
  });

  it('failure-detector: suspects, then buries, the node that stops; welcomes it back', async () => {
    const out = await example('failure-detector');
    expect(out).toMatch(/both sending: api-1, api-2 alive/);
    expect(out).toMatch(/api-2 suspected after \d+ ms of silence/);
    expect(out).toMatch(/events: join api-[12], join api-[12], (.*, )?suspect api-2, (.*, )?dead api-2, (.*, )?alive api-2/);
    expect(out).toContain('states: api-1=alive, api-2=alive');
  });

  it('partitioning: balanced strategies that move about the least possible share of keys', async () => {
    const out = await example('partitioning');
    for (const strategy of ['ring', 'jump', 'rendezvous', 'maglev']) {
      const [peak, moved, ideal] = numbers(
        out,
        new RegExp(`${strategy} +peak/mean ([\\d.]+) +keys moved when cache-e joined: ([\\d.]+)% \\(the least possible: ([\\d.]+)%\\)`),
      ) as [number, number, number];
      expect(peak).toBeLessThan(1.1);
      expect(ideal).toBe(20);
      expect(Math.abs(moved - ideal)).toBeLessThan(2);
    }
    expect(out).toContain('the same elsewhere: true');
  });

  it('common: a policy of your own composed with a timeout by wrap()', async () => {
    const out = await example('common');
    expect(out).toContain('fast call: done in 10 ms');
    expect(out).toContain('slow call: TimeoutError (timed out after 100 ms)');
    expect(out).toContain('cancelled call: the client went away');
    expect(out).toMatch(/calls: 3, timeouts: 1, p50 \d+ ms/);
    expect(out).toContain('{"error":{"reason":"limit","code":"ERR_BALLAST_SHED","message":"the server is at its limit"}}');
    expect(out).toContain('Retry-After for 2,500 ms: 3');
  });

  it('composed: retry ∘ breaker ∘ limiter ∘ timeout hide blips and slow attempts, and fail fast while the upstream is down', async () => {
    const out = await example('composed');
    expect(out).toMatch(/flaky: 12 requests -> 12×200; upstream hit \d+ times/);
    // Every first attempt hangs and is cut by the timeout, then retried: at least 8 hits; more
    // when a busy machine makes an answered retry miss its 200 ms too.
    const [slowHits] = numbers(out, /slow : 4 requests -> 4×200; upstream hit (\d+) times/) as [number];
    expect(slowHits).toBeGreaterThanOrEqual(8);
    expect(out).toContain('(circuit opened: threshold)');
    const [hits] = numbers(out, /down : 10 requests -> .*×503; upstream hit (\d+) times/) as [number];
    expect(hits).toBeLessThan(30);
    expect(out).toMatch(/up {3}: 3 requests -> 3×200/);
    expect(out).toContain('circuit: closed');
  });

  it('run.ts runs an example by name and lists them for an unknown one', async () => {
    expect((await run('run.ts', ['partitioning'])).stdout).toContain('the same elsewhere: true');
    const unknown = await run('run.ts', ['nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      'one of: backpressure, circuit-breaker, common, composed, failure-detector, load-balancer, partitioning, retry',
    );
  });
});
