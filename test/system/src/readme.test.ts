/**
 * Every command of apps/README.md runs as written. The commands are read from the README's
 * `sh` blocks; each is claimed by one scenario below, which runs it the way a reader would
 * (a server is started, used by the commands after it, then stopped; placeholders such as
 * `<id>` or `<p1>` are filled from what earlier commands printed). A command no scenario
 * claims fails the first test, so a new README command needs a scenario here.
 *
 * Ports: the README's fixed ports (8080, 8081–8083, 9080) are replaced by free ones, so the
 * test runs beside anything else on the machine. State: npm start keeps its tenants and keys
 * (BALLAST_IDENTITY_DATA_DIR) and its usage (BALLAST_USAGE_*) in a temporary directory, not in
 * the repository's .ballast/identity and data/usage; only .ballast/identity.json, where
 * `npm run identity` finds the management plane, is written (and removed) where the README
 * says. The trace example's log file (/tmp/ballast.log) is one in the test's temporary
 * directory, so runs side by side do not share it; the rest of those commands runs verbatim.
 * No BALLAST_* variable of the environment the tests run in reaches the commands.
 *
 * Under load the system may shed a request (503, 504: documented behaviour on a busy
 * machine); a reader would send it again, and so does this test. Any other answer fails it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, smallJpeg } from './helpers.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const readme = readFileSync(join(root, 'apps/README.md'), 'utf8');

/** The commands of the README's `sh` blocks: continuations joined, comments dropped. */
function commands(markdown: string): string[] {
  const out: string[] = [];
  for (const [, block] of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of (block ?? '').replace(/\\\n\s*/g, '').split('\n')) {
      const command = line
        .replace(/\s+#\s.*$/, '')
        .replace(/\s+/g, ' ')
        .trim();
      if (command !== '' && !command.startsWith('#')) out.push(command);
    }
  }
  return out;
}

/** The log file the README's trace example writes and reads; each run of this test uses its own in its place. */
const README_LOG = '/tmp/ballast.log';

/** Commands not run here, and why. */
const NOT_RUN: Record<string, string> = {
  'npm test -w @ballast/system-tests': 'this test is part of that suite',
  'npm run chaos': 'a 10-minute benchmark; test/system/src/chaos.test.ts runs a one-minute chaos run',
  'npm run chaos -- --duration=120 --seed=7 --faults=kill-api,partition-redis-primary':
    'a two-minute benchmark; test/system/src/chaos.test.ts runs a one-minute chaos run with a chosen fault list',
  'npm run chaos -- --logs=/tmp/chaos-logs': 'the 10-minute benchmark keeping its services’ logs; see npm run chaos',
};

let cwd: string;
let state: string;
const children: ChildProcess[] = [];
beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'ballast-readme-'));
  state = mkdtempSync(join(tmpdir(), 'ballast-readme-state-'));
  writeFileSync(join(cwd, 'photo.jpg'), await smallJpeg(640, 480));
});
afterAll(() => {
  for (const child of children) if (child.pid && child.exitCode === null) killGroup(child.pid, 'SIGKILL');
  rmSync(cwd, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
});

/** The environment of every command: this process's, without its BALLAST_* variables, with npm start's data in `state`. */
function environment(env: Record<string, string>): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('BALLAST_')));
  return {
    ...clean,
    BALLAST_IDENTITY_DATA_DIR: join(state, 'identity'),
    BALLAST_IDENTITY_PORT: '0',
    BALLAST_USAGE_DIR: join(state, 'usage', 'log'),
    BALLAST_USAGE_DATABASE: join(state, 'usage', 'store'),
    BALLAST_USAGE_COLD_DIR: join(state, 'usage', 'cold'),
    BALLAST_USAGE_BILLING_DIR: join(state, 'usage', 'billing'),
    ...env,
  };
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** `command` in bash, in its own process group, with its output collected. */
function bash(command: string, env: Record<string, string>, dir: string): { child: ChildProcess; output: () => string } {
  const child = spawn('bash', ['-c', command], { cwd: dir, env: environment(env), detached: true });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (c) => {
    output += String(c);
  });
  child.stderr?.on('data', (c) => {
    output += String(c);
  });
  return { child, output: () => output };
}

/** Runs `command` (from the repository, or `dir` for curl), resolving with its exit code and output. */
function run(
  command: string,
  env: Record<string, string> = {},
  timeoutMs = 300_000,
  dir = root,
): Promise<{ code: number | null; output: string }> {
  const { child, output } = bash(command, env, dir);
  const timer = setTimeout(() => child.pid && killGroup(child.pid, 'SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output: output() });
    }),
  );
}

/** Starts a long-running `command` in bash; resolves once its output matches `ready`, with what matched and a stop(). */
async function serve(
  command: string,
  ready: RegExp,
  env: Record<string, string> = {},
): Promise<{ match: RegExpMatchArray; output: () => string; stop: () => Promise<number | null> }> {
  const { child, output } = bash(command, env, root);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal === 'SIGINT' ? 0 : code)));
  const match = await eventually(
    `${command} to be ready`,
    240_000,
    async () => {
      if (child.exitCode !== null) throw new Error(`${command} exited: ${output()}`);
      return output().match(ready) ?? undefined;
    },
    100,
  );
  return {
    match,
    output,
    stop: async () => {
      if (child.pid) killGroup(child.pid, 'SIGINT');
      return await exited;
    },
    // npm re-raises the signal it was stopped by: a graceful stop ends in exit code 0 or by SIGINT.
  };
}

const claimed = new Set<string>();
/** Marks `command` as run here, and returns it as written. */
function command(text: string): string {
  expect(commands(readme), `the README no longer has: ${text}`).toContain(text);
  claimed.add(text);
  return text;
}

/** What `npm start` printed: its public and operational addresses and the demo tenant's key. */
function printed(output: string): { gateway: string; ops: string; key: string } {
  const gateway = output.match(/gateway\s+(http:\/\/\S+)/)?.[1];
  const ops = output.match(/ops\s+(http:\/\/\S+)/)?.[1];
  const key = output.match(/export BALLAST_KEY=(blst_\S+)/)?.[1];
  if (!gateway || !ops || !key) throw new Error(`npm start did not print its addresses and key:\n${output}`);
  return { gateway, ops, key };
}

/** The README's `export BALLAST_KEY=blst_…` with the key npm start printed (or the CLI issued) in place of `blst_…`. */
function exportKey(key: string): string {
  return command('export BALLAST_KEY=blst_…').replace('blst_…', key);
}

/** The error code in `text` if it is a JSON error body. */
function errorIn(text: string): string | undefined {
  try {
    return (JSON.parse(text) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** An answer that trying again cannot change: it ends a {@link retrying} wait at once. */
class Fatal extends Error {}

/**
 * Calls `attempt` until it returns a value other than undefined; throws when it throws a
 * {@link Fatal}, or after `timeoutMs` with the last error it threw. One attempt a second.
 */
async function retrying<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  return await eventually(
    what,
    timeoutMs,
    async () => {
      try {
        return await attempt();
      } catch (error) {
        if (error instanceof Fatal) return { fatal: error } as const;
        throw error;
      }
    },
    1000,
  ).then((value) => {
    if (typeof value === 'object' && value !== null && 'fatal' in value && value.fatal instanceof Fatal) throw value.fatal;
    return value as T;
  });
}

/** Codes a loaded system answers with for a while (shed, deadline, a new key not seen yet): the reader tries again. */
const AGAIN = new Set([
  'ERR_BALLAST_QUEUE_FULL',
  'ERR_BALLAST_OVERLOADED',
  'ERR_BALLAST_NO_ENDPOINT',
  'ERR_BALLAST_CIRCUIT_OPEN',
  'ERR_BALLAST_THROTTLED',
  'ERR_BALLAST_BODY_BUDGET',
  'ERR_BALLAST_DEADLINE',
  'ERR_BALLAST_UPSTREAM_TIMEOUT',
  'ERR_BALLAST_INCOMPLETE',
  'ERR_BALLAST_TOO_MANY_JOBS',
]);

/**
 * Runs `script` (in the photo's directory) until it writes `file` as an image `width` px
 * wide; a shed or late answer is sent again, any other answer fails at once.
 */
async function resizes(script: string, file: string, width: number, again: ReadonlySet<string> = AGAIN): Promise<void> {
  const path = join(cwd, file);
  await retrying(`${file}, ${width} px wide`, 180_000, async () => {
    rmSync(path, { force: true });
    const result = await run(script, {}, 60_000, cwd);
    if (result.code !== 0) throw new Error(`exit ${result.code}: ${result.output}`);
    const body = readFileSync(path);
    const code = errorIn(body.toString('utf8'));
    if (code !== undefined && again.has(code)) return undefined;
    if (code !== undefined) throw new Fatal(`${script}\nanswered ${body.toString('utf8')}`);
    const made = (await sharp(body).metadata()).width;
    if (made !== width) throw new Fatal(`${script}\nwrote an image ${made} px wide, not ${width}`);
    return true;
  });
}

/** The JSON manifest of `POST /v1/renditions`. */
interface Manifest {
  id: string;
  status: string;
  asked: number;
  delivered: number;
  harvest: number;
  renditions: Array<{ width: number; format: string; status: string; url?: string; reason?: string; contentType?: string }>;
}

/** A sync rendition set of 320, 640 and 960 px in WebP and AVIF: every rendition accounted for, each delivered one fetched. */
async function checkRenditions(manifest: Manifest, gateway: string, key: string): Promise<void> {
  expect(manifest.asked).toBe(6);
  expect(manifest.renditions.map((r) => `${r.width} ${r.format}`).sort()).toEqual([
    '320 avif',
    '320 webp',
    '640 avif',
    '640 webp',
    '960 avif',
    '960 webp',
  ]);
  const done = manifest.renditions.filter((r) => r.status === 'done');
  expect(manifest.delivered).toBe(done.length);
  expect(manifest.status).toBe(done.length === 6 ? 'complete' : 'partial');
  expect(manifest.harvest).toBeCloseTo(done.length / 6, 3);
  for (const missing of manifest.renditions.filter((r) => r.status !== 'done')) {
    expect(missing.status, JSON.stringify(missing)).toBe('missing');
    expect(['degraded', 'shed', 'deadline'], JSON.stringify(missing)).toContain(missing.reason);
  }
  for (const rendition of done) {
    const res = await fetch(`${gateway}${rendition.url}`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status, rendition.url).toBe(200);
    const image = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    expect({ width: image.width, format: image.format }).toEqual({
      width: rendition.width,
      format: rendition.format === 'avif' ? 'heif' : rendition.format,
    });
  }
}

/** Runs an `npm run identity` command; resolves with the JSON it printed. */
async function identity(text: string): Promise<Record<string, unknown>> {
  const result = await run(text, {}, 120_000);
  expect(result.code, result.output).toBe(0);
  const json = result.output.match(/^\{[\s\S]*^\}/m)?.[0];
  expect(json, result.output).toBeDefined();
  return JSON.parse(json as string) as Record<string, unknown>;
}

describe('apps/README.md commands', () => {
  it('runs the embedded system with its demo key, the identity CLI, and the curl commands against it', { timeout: 900_000 }, async () => {
    const system = await serve(command('npm start'), /export BALLAST_KEY=blst_\S+/, { BALLAST_PORT: '0', BALLAST_OPS_PORT: '0' });
    try {
      const { gateway, ops, key } = printed(system.output());
      const at = (text: string): string => text.replaceAll('http://127.0.0.1:8080', gateway).replaceAll('http://127.0.0.1:9080', ops);
      const sync = command(
        `curl -sS -X POST -H "authorization: Bearer $BALLAST_KEY" -H 'content-type: image/jpeg' --data-binary @photo.jpg 'http://127.0.0.1:8080/v1/resize?width=800&format=webp' -o photo-800.webp`,
      );
      await resizes(`${exportKey(key)}\n${at(sync)}`, 'photo-800.webp', 800);

      const async = at(
        command(
          `curl -sS -X POST -H "authorization: Bearer $BALLAST_KEY" -H 'content-type: image/jpeg' --data-binary @photo.jpg 'http://127.0.0.1:8080/v1/resize?width=800&mode=async'`,
        ),
      );
      const accepted = await retrying('the async job to be accepted', 180_000, async () => {
        const result = await run(`${exportKey(key)}\n${async}`, {}, 60_000, cwd);
        const code = errorIn(result.output);
        if (code !== undefined && !AGAIN.has(code)) throw new Fatal(result.output);
        return code === undefined ? (JSON.parse(result.output) as { id: string; status: string }) : undefined;
      });
      expect(accepted.status, JSON.stringify(accepted)).toBe('pending');
      const jobs = command(`curl -sS -H "authorization: Bearer $BALLAST_KEY" 'http://127.0.0.1:8080/v1/jobs/<id>' -o photo-800.jpg`);
      await retrying('the async result', 120_000, async () => {
        const result = await run(`${exportKey(key)}\n${at(jobs).replace('<id>', accepted.id)}`, {}, 30_000, cwd);
        if (result.code !== 0) throw new Error(result.output);
        const body = readFileSync(join(cwd, 'photo-800.jpg'));
        const answer = errorIn(body.toString('utf8')) ?? (body.toString('utf8').includes('"pending"') ? 'pending' : undefined);
        if (answer !== undefined && answer !== 'pending') throw new Fatal(body.toString('utf8'));
        return answer === undefined && (await sharp(body).metadata()).width === 800 ? true : undefined;
      });

      const renditions = command(
        `curl -sS -X POST -H "authorization: Bearer $BALLAST_KEY" -H 'content-type: image/jpeg' --data-binary @photo.jpg 'http://127.0.0.1:8080/v1/renditions?widths=320,640,960&formats=webp,avif&deadlineMs=2000'`,
      );
      const manifest = await retrying('a rendition set that delivered', 180_000, async () => {
        const result = await run(`${exportKey(key)}\n${at(renditions)}`, {}, 60_000, cwd);
        const code = errorIn(result.output);
        if (code !== undefined && !AGAIN.has(code)) throw new Fatal(result.output);
        if (code !== undefined) return undefined;
        const set = JSON.parse(result.output) as Manifest;
        return set.delivered > 0 ? set : undefined; // every rendition late: a busy machine, sent again
      });
      await checkRenditions(manifest, gateway, key);

      // More tenants and keys through the management API npm start runs.
      const tenant = await identity(command('npm run identity -- create-tenant acme --plan pro'));
      expect(tenant).toMatchObject({ name: 'acme', plan: 'pro' });
      const issued = await identity(command('npm run identity -- issue-key <tenant id>').replace('<tenant id>', String(tenant.id)));
      expect(String(issued.key)).toMatch(/^blst_/);
      // The new key works (once the API servers' edge caches have it: 401 until then).
      await resizes(
        `${exportKey(String(issued.key))}\n${at(sync)}`,
        'photo-800.webp',
        800,
        new Set([...AGAIN, 'ERR_BALLAST_AUTH_UNKNOWN_KEY']),
      );
      await identity(command('npm run identity -- revoke-key <key id>').replace('<key id>', String(issued.id)));
      await eventually('the revoked key to be refused', 60_000, async () => {
        const res = await fetch(`${gateway}/v1/resize?width=32`, {
          method: 'POST',
          body: readFileSync(join(cwd, 'photo.jpg')),
          headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${issued.key}` },
        });
        await res.arrayBuffer();
        return res.status === 403 ? true : undefined;
      });

      const metrics = await run(at(command("curl -sS 'http://127.0.0.1:9080/metrics'")), {}, 30_000, cwd);
      expect(metrics.output).toContain('ballast_gateway_requests_total');
      const stats = await run(at(command("curl -sS 'http://127.0.0.1:9080/gateway/stats'")), {}, 30_000, cwd);
      expect(JSON.parse(stats.output)).toHaveProperty('breakers');
    } finally {
      expect(await system.stop()).toBe(0);
    }
    expect(system.output()).toContain('Stopping: finishing the jobs in progress');
  });

  it('runs the bursts', { timeout: 900_000 }, async () => {
    for (const burst of [command('npm start -- --burst'), command('npm start -- --burst=1000')]) {
      const result = await run(burst);
      expect(result.code, result.output).toBe(0);
      expect(result.output).toMatch(/latency\s+p50/);
    }
  });

  it('runs the Redis topology, and the system on it through the exported variables', { timeout: 600_000 }, async () => {
    const topology = await serve(
      command('npm run redis:topology'),
      /export BALLAST_REDIS_SENTINELS=(\S+)\s+export BALLAST_REDIS_MASTER=(\S+)/,
    );
    try {
      const [sentinels, master] = [topology.match[1] ?? '', topology.match[2] ?? ''];
      const exportSentinels = command('export BALLAST_REDIS_SENTINELS=127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>');
      const ports = sentinels.split(',').map((s) => s.split(':')[1] ?? '');
      const filled = exportSentinels
        .replace('<p1>', ports[0] ?? '')
        .replace('<p2>', ports[1] ?? '')
        .replace('<p3>', ports[2] ?? '');
      expect(filled).toBe(`export BALLAST_REDIS_SENTINELS=${sentinels}`);
      expect(command('export BALLAST_REDIS_MASTER=ballast')).toBe(`export BALLAST_REDIS_MASTER=${master}`);
      const system = await serve(
        `${filled}; export BALLAST_REDIS_MASTER=${master}; ${command('npm start')}`,
        /export BALLAST_KEY=blst_\S+/,
        {
          BALLAST_PORT: '0',
          BALLAST_OPS_PORT: '0',
        },
      );
      try {
        expect(system.output()).toContain('queue: redis, Sentinel');
        const { gateway, key } = printed(system.output());
        const sync = command(
          `curl -sS -X POST -H "authorization: Bearer $BALLAST_KEY" -H 'content-type: image/jpeg' --data-binary @photo.jpg 'http://127.0.0.1:8080/v1/resize?width=800&format=webp' -o photo-800.webp`,
        );
        await resizes(`${exportKey(key)}\n${sync.replace('http://127.0.0.1:8080', gateway)}`, 'photo-800.webp', 800);
      } finally {
        expect(await system.stop()).toBe(0);
      }
    } finally {
      await topology.stop();
    }
  });

  it('runs every service as its own process', { timeout: 600_000 }, async () => {
    const topology = await serve('npm run redis:topology', /export BALLAST_REDIS_SENTINELS=(\S+)/);
    const started: Array<{ stop: () => Promise<number | null> }> = [];
    try {
      const env = { BALLAST_REDIS_SENTINELS: topology.match[1] ?? '', BALLAST_REDIS_MASTER: 'ballast' };
      started.push(
        await serve(command('npx node --initial-old-space-size=128 --conditions=@ballast/source apps/worker/src/main.ts'), /"worker"/, env),
      );
      const apiCommand = command(
        'BALLAST_API_PORT=8081 npx node --initial-old-space-size=128 --conditions=@ballast/source apps/api/src/main.ts',
      );
      // Each API server on a free port (0), read from the line it prints, for the gateway's command.
      const ports: string[] = [];
      for (let i = 0; i < 3; i++) {
        const api = await serve(apiCommand.replace('8081', '0'), /"url":"http:\/\/[^"]+:(\d+)"/, env);
        started.push(api);
        ports.push(api.match[1] ?? '');
      }
      const gatewayCommand = command(
        'BALLAST_GATEWAY_UPSTREAMS=http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 npx node --initial-old-space-size=128 --conditions=@ballast/source apps/gateway/src/main.ts',
      );
      const filled = gatewayCommand
        .replace('8081', ports[0] ?? '')
        .replace('8082', ports[1] ?? '')
        .replace('8083', ports[2] ?? '');
      const gateway = await serve(filled, /"url":"(http:[^"]+)"/, { ...env, BALLAST_GATEWAY_PORT: '0', BALLAST_GATEWAY_OPS_PORT: '0' });
      started.push(gateway);
      await retrying('a resize through the gateway', 180_000, async () => {
        const res = await fetch(`${gateway.match[1]}/v1/resize?width=32`, {
          method: 'POST',
          body: readFileSync(join(cwd, 'photo.jpg')),
          headers: { 'content-type': 'image/jpeg' },
        });
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status === 200) return (await sharp(body).metadata()).width === 32 ? true : undefined;
        if (AGAIN.has(errorIn(body.toString('utf8')) ?? '')) return undefined; // the gateway still finding its upstreams, or a shed
        throw new Fatal(`${res.status} ${body.toString('utf8')}`);
      });
    } finally {
      for (const s of started.reverse()) await s.stop();
      await topology.stop();
    }
  });

  it('follows one request through the services’ logs with npm run trace', { timeout: 600_000 }, async () => {
    // The README's log file, moved into this run's own directory: runs side by side do not share it.
    const log = (text: string): string => text.replaceAll(README_LOG, join(state, 'ballast.log'));
    const system = await serve(log(command(`BALLAST_LOG_LEVEL=info npm start 2> ${README_LOG}`)), /export BALLAST_KEY=blst_\S+/, {
      BALLAST_PORT: '0',
      BALLAST_OPS_PORT: '0',
    });
    try {
      const { gateway, key } = printed(system.output());
      let attempt = 0;
      const id = await retrying('a request answered 200', 180_000, async () => {
        const requestId = `readme-trace-${process.pid}-${++attempt}`;
        const res = await fetch(`${gateway}/v1/resize?width=64`, {
          method: 'POST',
          body: readFileSync(join(cwd, 'photo.jpg')),
          headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${key}`, 'x-request-id': requestId },
        });
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status === 200) return requestId;
        const code = errorIn(body.toString('utf8'));
        if (code !== undefined && AGAIN.has(code)) return undefined;
        throw new Fatal(`${res.status} ${body.toString('utf8')}`);
      });
      const trace = await retrying('the request in the log', 60_000, async () => {
        const result = await run(log(command(`npm run trace -- <request id> ${README_LOG}`)).replace('<request id>', id));
        return result.code === 0 ? result.output : undefined;
      });
      expect(trace).toContain(`request ${id} POST /v1/resize → 200`);
      expect(trace).toMatch(/· tenant tn_\w+ ·/); // the demo tenant, by id
      expect(trace).toMatch(/conversion\s+[\d.]+ ms/);
    } finally {
      expect(await system.stop()).toBe(0);
    }
  });

  it('runs the distributed deployment with npm run start:distributed, a request through it, and stops it', {
    timeout: 400_000,
  }, async () => {
    const deployment = await serve(
      command('npm run start:distributed'),
      /export BALLAST_KEY=(\S+)[\s\S]*?'(http:\/\/127\.0\.0\.1:\d+)\/v1\/resize/,
    );
    try {
      const [key, url] = [deployment.match[1] ?? '', deployment.match[2] ?? ''];
      const res = await eventually('the demo key to reach the API servers', 60_000, async () => {
        const r = await fetch(`${url}/v1/resize?width=64`, {
          method: 'POST',
          body: readFileSync(join(cwd, 'photo.jpg')),
          headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
        });
        await r.arrayBuffer();
        return r.status === 200 ? r : undefined;
      });
      expect(res.headers.get('content-type')).toBe('image/jpeg');
    } finally {
      expect(await deployment.stop(), deployment.output()).toBe(0);
    }
  });

  // The encoders at their top effort take about a minute of CPU: many more of a loaded machine.
  it('runs the encoder-cost script and an app’s tests', { timeout: 1_500_000 }, async () => {
    for (const text of [
      command('npx node --conditions=@ballast/source apps/worker/scripts/encoder-cost.ts'),
      command('npm test -w @ballast/app-shared'),
    ]) {
      const result = await run(text, {}, 900_000);
      expect(result.code, result.output).toBe(0);
    }
  });

  it('leaves no README command unclaimed', () => {
    for (const text of Object.keys(NOT_RUN)) command(text);
    expect(commands(readme).filter((c) => !claimed.has(c))).toEqual([]);
  });
});
