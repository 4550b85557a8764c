/**
 * Every command of apps/README.md runs as written. The commands are read from the README's
 * `sh` blocks; each is claimed by one scenario below, which runs it the way a reader would
 * (a server is started, used by the commands after it, then stopped; placeholders such as
 * `<id>` or `<p1>` are filled from what earlier commands printed). A command no scenario
 * claims fails the first test, so a new README command needs a scenario here.
 *
 * Ports: the README's fixed ports (8080, 8081–8083, 9080) are replaced by free ones, so the
 * test runs beside anything else on the machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
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

/** Commands not run here, and why. */
const NOT_RUN: Record<string, string> = {
  'npm test -w @ballast/system-tests': 'this test is part of that suite',
  'npm run chaos': 'a 10-minute benchmark; test/system/src/chaos.test.ts runs a one-minute chaos run',
};

let cwd: string;
const children: ChildProcess[] = [];
beforeAll(async () => {
  cwd = mkdtempSync(join(tmpdir(), 'ballast-readme-'));
  writeFileSync(join(cwd, 'photo.jpg'), await smallJpeg(640, 480));
});
afterAll(() => {
  for (const child of children) if (child.pid && child.exitCode === null) killGroup(child.pid, 'SIGKILL');
  rmSync(cwd, { recursive: true, force: true });
});

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** `command` in bash, in its own process group, with its output collected. */
function bash(command: string, env: Record<string, string>, dir: string): { child: ChildProcess; output: () => string } {
  const child = spawn('bash', ['-c', command], { cwd: dir, env: { ...process.env, ...env }, detached: true });
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
    120_000,
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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

const claimed = new Set<string>();
/** Marks `command` as run here, and returns it as written. */
function command(text: string): string {
  expect(commands(readme), `the README no longer has: ${text}`).toContain(text);
  claimed.add(text);
  return text;
}

describe('apps/README.md commands', () => {
  it('runs the embedded system, and the curl commands against it', { timeout: 300_000 }, async () => {
    const [port, ops] = [await freePort(), await freePort()];
    const system = await serve(command('npm start'), /ops\s+(http:\S+)/, { BALLAST_PORT: String(port), BALLAST_OPS_PORT: String(ops) });
    const at = (text: string): string =>
      text.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`).replaceAll('127.0.0.1:9080', `127.0.0.1:${ops}`);
    const sync = await run(
      at(
        command(
          "curl -sS -X POST -H 'content-type: image/jpeg' --data-binary @photo.jpg 'http://127.0.0.1:8080/v1/resize?width=800&format=webp' -o photo-800.webp",
        ),
      ),
      {},
      60_000,
      cwd,
    );
    expect(sync.code, sync.output).toBe(0);
    expect((await sharp(join(cwd, 'photo-800.webp')).metadata()).width).toBe(800);
    const async = await run(
      at(
        command(
          "curl -sS -X POST -H 'content-type: image/jpeg' --data-binary @photo.jpg 'http://127.0.0.1:8080/v1/resize?width=800&mode=async'",
        ),
      ),
      {},
      60_000,
      cwd,
    );
    const id = (JSON.parse(async.output) as { id: string }).id;
    const fetchResult = at(command("curl -sS 'http://127.0.0.1:8080/v1/jobs/<id>' -o photo-800.jpg")).replace('<id>', id);
    await eventually('the async result', 30_000, async () => {
      await run(fetchResult, {}, 30_000, cwd);
      return statSync(join(cwd, 'photo-800.jpg')).size > 0 && (await sharp(join(cwd, 'photo-800.jpg')).metadata()).width === 800
        ? true
        : undefined;
    });
    const metrics = await run(at(command("curl -sS 'http://127.0.0.1:9080/metrics'")), {}, 30_000, cwd);
    expect(metrics.output).toContain('ballast_gateway_requests_total');
    const stats = await run(at(command("curl -sS 'http://127.0.0.1:9080/gateway/stats'")), {}, 30_000, cwd);
    expect(JSON.parse(stats.output)).toHaveProperty('breakers');
    expect(await system.stop()).toBe(0);
    expect(system.output()).toContain('Stopping: finishing the jobs in progress');
  });

  it('runs the bursts', { timeout: 600_000 }, async () => {
    for (const burst of [command('npm start -- --burst'), command('npm start -- --burst=1000')]) {
      const result = await run(burst);
      expect(result.code, result.output).toBe(0);
      expect(result.output).toMatch(/latency\s+p50/);
    }
  });

  it('runs the Redis topology, and the system on it through the exported variables', { timeout: 300_000 }, async () => {
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
      const [port, ops] = [await freePort(), await freePort()];
      const system = await serve(`${filled}; export BALLAST_REDIS_MASTER=${master}; ${command('npm start')}`, /queue: redis, Sentinel/, {
        BALLAST_PORT: String(port),
        BALLAST_OPS_PORT: String(ops),
      });
      expect(await system.stop()).toBe(0);
    } finally {
      await topology.stop();
    }
  });

  it('runs every service as its own process', { timeout: 300_000 }, async () => {
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
      const ports = [await freePort(), await freePort(), await freePort()];
      for (const port of ports) started.push(await serve(apiCommand.replace('8081', String(port)), /"url"/, env));
      const gatewayCommand = command(
        'BALLAST_GATEWAY_UPSTREAMS=http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083 npx node --initial-old-space-size=128 --conditions=@ballast/source apps/gateway/src/main.ts',
      );
      const filled = gatewayCommand.replace('8081', String(ports[0])).replace('8082', String(ports[1])).replace('8083', String(ports[2]));
      const [port, ops] = [await freePort(), await freePort()];
      const gateway = await serve(filled, /"url":"(http:[^"]+)"/, {
        ...env,
        BALLAST_GATEWAY_PORT: String(port),
        BALLAST_GATEWAY_OPS_PORT: String(ops),
      });
      started.push(gateway);
      const res = await fetch(`${gateway.match[1]}/v1/resize?width=32`, {
        method: 'POST',
        body: readFileSync(join(cwd, 'photo.jpg')),
        headers: { 'content-type': 'image/jpeg' },
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    } finally {
      for (const s of started.reverse()) await s.stop();
      await topology.stop();
    }
  });

  it('follows one request through the services’ logs with npm run trace', { timeout: 300_000 }, async () => {
    const [port, ops] = [await freePort(), await freePort()];
    const system = await serve(command('BALLAST_LOG_LEVEL=info npm start 2> /tmp/ballast.log'), /gateway\s+(http:\S+)/, {
      BALLAST_PORT: String(port),
      BALLAST_OPS_PORT: String(ops),
    });
    try {
      const res = await fetch(`${system.match[1]}/v1/resize?width=64`, {
        method: 'POST',
        body: readFileSync(join(cwd, 'photo.jpg')),
        headers: { 'content-type': 'image/jpeg', 'x-request-id': 'readme-trace-1' },
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      const trace = await eventually('the request in the log', 30_000, async () => {
        const result = await run(command('npm run trace -- <request id> /tmp/ballast.log').replace('<request id>', 'readme-trace-1'));
        return result.code === 0 ? result.output : undefined;
      });
      expect(trace).toContain('request readme-trace-1 POST /v1/resize → 200');
      expect(trace).toMatch(/conversion\s+[\d.]+ ms/);
    } finally {
      expect(await system.stop()).toBe(0);
      rmSync('/tmp/ballast.log', { force: true });
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

  it('runs the encoder-cost script and an app’s tests', { timeout: 600_000 }, async () => {
    for (const text of [
      command('npx node --conditions=@ballast/source apps/worker/scripts/encoder-cost.ts'),
      command('npm test -w @ballast/app-shared'),
    ]) {
      const result = await run(text);
      expect(result.code, result.output).toBe(0);
    }
  });

  it('leaves no README command unclaimed', () => {
    for (const text of Object.keys(NOT_RUN)) command(text);
    expect(commands(readme).filter((c) => !claimed.has(c))).toEqual([]);
  });
});
