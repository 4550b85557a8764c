/**
 * A hostile client against the distributed system — every service its own process, a real
 * Redis, real HTTP on loopback. Each test reproduces one attack of the hostile-client
 * review and checks that everyone else is still served.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { getPriority } from 'node:os';
import { RedisQueue } from '@ballast/app-queue';
import { type AppEnv, listen } from '@ballast/app-shared';
import { type Distributed, junk, repeat, type ServiceProcess, send, spawnService, startDistributed, uploads } from '@ballast/app-system';
import { sampleJpeg } from '@ballast/app-worker';
import { type RedisServer, startRedis } from '@ballast/test/redis';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, eventually, resize, smallJpeg } from './helpers.ts';

let redis: RedisServer;
let jpeg: Buffer;
beforeAll(async () => {
  redis = await startRedis();
  jpeg = await smallJpeg(160, 120);
});
afterAll(async () => {
  await redis?.stop();
});

/** Sends `count` resize requests one after another; the statuses and error codes seen. */
async function steady(url: string, count: number, query = 'width=32'): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const res = await resize(url, query, jpeg);
    const key = res.status === 200 ? '200' : `${res.status} ${await errorCode(res).catch(() => '?')}`;
    if (res.status === 200) await res.arrayBuffer();
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return seen;
}

async function stats(ops: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`${ops}/gateway/stats`)).json()) as Record<string, unknown>;
}

describe('one pathological request', () => {
  let system: Distributed;
  beforeAll(async () => {
    system = await startDistributed({
      redisUrl: redis.url,
      apis: 2,
      env: { BALLAST_QUEUE_MAX_DEPTH: '100' },
      worker: { BALLAST_WORKER_CONCURRENCY: '2' },
    });
  }, 120_000);
  afterAll(async () => {
    await system?.close();
  });

  it('does not make the API servers shed ordinary traffic afterwards', { timeout: 180_000 }, async () => {
    // The largest AVIF allowed (1 MP at effort 4): about 2 s of CPU, far more than anything else.
    const slow = await resize(system.url, 'format=avif&width=1024&height=1024&fit=fill&deadlineMs=60000', jpeg);
    expect(slow.status).toBe(200);
    await slow.arrayBuffer();
    // Ordinary requests whose deadline is shorter than that one conversion took, spread
    // over both API servers, each of which has seen it through the queue's feed (an
    // estimate it could set would leave them no time at all).
    const wallMs = Number(slow.headers.get('x-wall-ms'));
    const seen = await steady(system.url, 20, `width=32&deadlineMs=${Math.max(1000, Math.floor(wallMs / 2))}`);
    expect(seen.get('200') ?? 0, JSON.stringify([...seen])).toBeGreaterThanOrEqual(19);
  });

  it('keeps one client’s costly conversions, back to back, to its share: everyone else is served', { timeout: 180_000 }, async () => {
    // Four loops of the costliest request allowed, from another address (127.0.0.2).
    const seen = new Map<number, number>();
    const attack = repeat(async (signal) => {
      const res = await send(`${system.url}/v1/resize?format=avif&width=1024&height=1024&fit=fill&effort=4&deadlineMs=60000`, {
        method: 'POST',
        body: jpeg,
        headers: { 'content-type': 'image/jpeg' },
        signal,
      });
      seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
    }, 4);
    try {
      await eventually('the attacker to be refused its second costly conversion', 30_000, async () =>
        (seen.get(429) ?? 0) > 0 ? true : undefined,
      );
      const served = await steady(system.url, 20);
      expect(served.get('200') ?? 0, JSON.stringify([...served])).toBe(20);
    } finally {
      attack.stop();
    }
    // Its repeats were answered by the gateway from memory, without reaching an API server.
    expect(((await stats(system.ops)).refusals as { refused: number }).refused).toBeGreaterThan(0);
  });

  it('stops a long conversion at its deadline: the worker slot is freed, ordinary jobs are served', { timeout: 180_000 }, async () => {
    // A 36 MP WebP at the top effort from a noisy input: within every size limit, about ten
    // seconds of one core; its client waits six.
    const noisy = await sampleJpeg({ width: 2000, height: 2000 });
    const res = await resize(system.url, 'format=webp&width=6000&height=6000&fit=fill&effort=6&deadlineMs=6000', noisy);
    expect([res.status, await errorCode(res)]).toEqual([504, 'ERR_BALLAST_DEADLINE']);
    // The worker stopped converting at the deadline (it failed the job) instead of finishing it for no one.
    const metrics = `http://127.0.0.1:${String(system.workers[0]?.info.port)}/metrics`;
    await eventually('the worker to stop the conversion', 60_000, async () =>
      /^ballast_worker_jobs_total\{outcome="failed"\} [1-9]/m.test(await (await fetch(metrics)).text()) ? true : undefined,
    );
    const seen = await steady(system.url, 10);
    expect(seen.get('200') ?? 0, JSON.stringify([...seen])).toBe(10);
  });

  it('refuses SVG and other undocumented input with 415, through the whole path', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>');
    for (const body of [svg, Buffer.from('%PDF-1.7\n'), Buffer.from('<html></html>')]) {
      const res = await resize(system.url, 'width=4', body, { headers: { 'content-type': 'image/svg+xml' } });
      expect([res.status, await errorCode(res)]).toEqual([415, 'ERR_BALLAST_IMAGE_UNSUPPORTED']);
    }
  });

  it('serves operational endpoints on the operational port only, whatever the spelling', async () => {
    for (const target of ['/metrics', '/%6detrics', '/gateway/stats', '/%67ateway/stats', '/readyz', '/v1/%2e%2e/metrics']) {
      expect([target, await rawStatus(system.url, target)]).toEqual([target, 404]);
    }
    expect(await (await fetch(`${system.ops}/metrics`)).text()).toContain('ballast_gateway_requests_total');
    expect(await stats(system.ops)).toHaveProperty('breakers');
  });
});

describe('a client’s cost budget', () => {
  let system: Distributed;
  beforeAll(async () => {
    system = await startDistributed({
      redisUrl: redis.url,
      apis: 2,
      // A budget of 5 s of conversion at once, refilled at 10 ms/s: one costly request
      // spends most of it, and the refill cannot pay for another within the test. The
      // costly lane is out of the way, so only the budget stands between the attacker and the workers.
      api: { BALLAST_API_ANONYMOUS_COST_MS_PER_SEC: '10', BALLAST_API_ANONYMOUS_COST_BURST_MS: '5000', BALLAST_API_COSTLY_MS: '1000000' },
      // Conversions below the request path for CPU, as where workers share cores with it.
      worker: { BALLAST_WORKER_CONCURRENCY: '2', BALLAST_WORKER_NICE: '5' },
    });
  }, 120_000);
  afterAll(async () => {
    await system?.close();
  });

  it('holds a client sending costly conversions to its budget while another client is served throughout', {
    timeout: 180_000,
  }, async () => {
    // AVIF 640×480 at effort 4: about 3.7 s of indicative cost each, converted by real sharp.
    const url = `${system.url}/v1/resize?format=avif&width=640&height=480&fit=fill&effort=4&deadlineMs=60000`;
    const attacker = new Map<string, number>();
    const costly = async (): Promise<void> => {
      const res = await send(url, { method: 'POST', body: jpeg, headers: { 'content-type': 'image/jpeg' } });
      const key =
        res.status === 200 ? '200' : `${res.status} ${(JSON.parse(res.body.toString()) as { error: { code: string } }).error.code}`;
      attacker.set(key, (attacker.get(key) ?? 0) + 1);
    };
    const attack = async (): Promise<void> => {
      for (let round = 0; round < 3; round++) await Promise.all([costly(), costly()]);
    };
    // Warm: the first conversion of a fresh worker loads libvips.
    await eventually('the system to serve', 60_000, async () => ((await steady(system.url, 1)).get('200') ? true : undefined));
    // Generous deadlines: what is asserted is who got served, not how fast (the machine may be loaded).
    const [, served] = await Promise.all([attack(), steady(system.url, 20, 'width=32&deadlineMs=30000')]);
    // Who got served: the attacker exactly the one request its bucket held (both API servers
    // book on the same Redis bucket), everyone else everything.
    expect(Object.fromEntries(attacker)).toEqual({ '200': 1, '429 ERR_BALLAST_CLIENT_LIMIT': 5 });
    expect(served.get('200') ?? 0, JSON.stringify([...served])).toBe(20);
    // A conversion dearer than the whole budget is refused outright, whatever the bucket holds.
    const tooDear = await send(`${system.url}/v1/resize?format=avif&width=1024&height=1024&fit=fill&effort=4&mode=async`, {
      method: 'POST',
      body: jpeg,
      headers: { 'content-type': 'image/jpeg' },
      localAddress: '127.0.0.3',
    });
    expect([tooDear.status, (JSON.parse(tooDear.body.toString()) as { error: { code: string } }).error.code]).toEqual([
      422,
      'ERR_BALLAST_TOO_COSTLY',
    ]);
  });

  it.runIf(existsSync('/proc/self/task'))('runs every thread of the worker, libvips’ included, at its lower CPU priority', async () => {
    const pid = system.workers[0]?.proc.pid as number;
    // Field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice value (the fields after the name, which ends in ')').
    const nice = readdirSync(`/proc/${pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    });
    // The conversions above ran on threads started after the worker lowered itself, and on the ones it had then.
    expect(nice.length).toBeGreaterThan(4);
    // (A test run itself below 5 starts the worker there: never raised, it stays.)
    expect(new Set(nice)).toEqual(new Set([Math.max(5, getPriority())]));
  });
});

describe('slow and incomplete uploads', () => {
  let system: Distributed;
  beforeAll(async () => {
    system = await startDistributed({
      redisUrl: redis.url,
      apis: 2,
      worker: { BALLAST_WORKER_CONCURRENCY: '2' },
      gateway: {
        BALLAST_GATEWAY_HEADERS_TIMEOUT_MS: '1000',
        BALLAST_GATEWAY_BODY_TIMEOUT_MS: '60000',
        BALLAST_GATEWAY_BODY_BUDGET_BYTES: String(64 * 1024 * 1024),
        BALLAST_GATEWAY_BODY_BUDGET_PER_CLIENT_BYTES: String(32 * 1024 * 1024),
      },
    });
  }, 120_000);
  afterAll(async () => {
    await system?.close();
  });

  it('does not let 50 slow uploads throttle a well-behaved client', { timeout: 120_000 }, async () => {
    // Fifty uploads of 9 MB at 20 KB/s (above the minimum rate): in flight for minutes.
    const slow = uploads(system.url, 50, { length: 9_000_000, first: 20_000, more: 20_000 });
    try {
      await eventually('the slow uploads to be in flight', 20_000, async () =>
        ((await stats(system.ops)).bodies as { usedBytes: number }).usedBytes >= 50 * 20_000 ? true : undefined,
      );
      const seen = await steady(system.url, 99);
      expect(seen.get('200') ?? 0, JSON.stringify([...seen])).toBe(99);
      expect((await stats(system.ops)).throttle).toMatchObject({ throttled: 0 });
    } finally {
      for (const s of slow) s.stop();
    }
  });

  it('bounds what incomplete uploads can hold: one client gets its share, everyone else is served', { timeout: 120_000 }, async () => {
    // Forty 9 MB uploads from one address, each stopped 100 KB short of its end.
    const held = uploads(system.url, 40, { length: 9_000_000, first: 8_900_000 });
    try {
      const bodies = await eventually('the uploads beyond the client’s share to be refused', 60_000, async () => {
        const b = (await stats(system.ops)).bodies as { usedBytes: number; maxBytesPerClient: number; refused: number };
        return b.refused >= 30 ? b : undefined;
      });
      expect(bodies.usedBytes).toBeLessThanOrEqual(bodies.maxBytesPerClient);
      const refused = await held[held.length - 1]?.answer;
      expect(refused?.body).toContain('ERR_BALLAST_BODY_BUDGET');
      const seen = await steady(system.url, 10); // from 127.0.0.1: another client
      expect(seen.get('200')).toBe(10);
    } finally {
      for (const h of held) h.stop();
    }
  });

  it('answers a dribbling body 408 and closes its connection', { timeout: 60_000 }, async () => {
    const [dribble] = uploads(system.url, 1, { length: 100_000, first: 10, more: 10, everyMs: 500 }); // 20 bytes/s
    const answer = await dribble!.answer;
    dribble!.stop();
    expect([answer.status, answer.body]).toEqual([408, expect.stringContaining('ERR_BALLAST_BODY_TIMEOUT')]);
  });

  it('turns away one address flooding junk at its request rate: another address’s yield is untouched', { timeout: 120_000 }, async () => {
    // Operational paths, SVG and PDF bodies and forged forwarding headers, 4 loops from 127.0.0.2.
    const flood = junk(system.url, 4);
    try {
      await eventually('the flooding address to be over its rate', 30_000, async () =>
        ((await stats(system.ops)).rateLimit as { limited: number }).limited > 0 ? true : undefined,
      );
      const seen = await steady(system.url, 30); // from 127.0.0.1
      expect(seen.get('200') ?? 0, JSON.stringify([...seen])).toBe(30);
    } finally {
      flood.stop();
    }
    // Its forged X-Forwarded-For did not spread the flood over other addresses' rates.
    expect((await stats(system.ops)).rateLimit).toMatchObject({ keys: 2 });
  });

  it('closes a connection that never sends a byte, and one that never finishes its headers', { timeout: 60_000 }, async () => {
    const silent = await socketTo(system.url);
    const partial = await socketTo(system.url);
    partial.write('POST /v1/resize HTTP/1.1\r\nHost: x\r\n');
    await Promise.all([closedSocket(silent), closedSocket(partial)]);
  });
});

describe('a connection flood', () => {
  let gateway: ServiceProcess;
  let echo: { url: string; close(): Promise<void> };
  beforeAll(async () => {
    const app = new Hono<AppEnv>();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('/v1/resize', async (c) => c.json({ bytes: (await c.req.arrayBuffer()).byteLength }));
    echo = await listen(app.fetch);
    // Header and idle timeouts far longer than the test: only the connection limits can protect anyone.
    gateway = await spawnService('gateway', {
      BALLAST_GATEWAY_UPSTREAMS: echo.url,
      BALLAST_GATEWAY_PORT: '0',
      BALLAST_GATEWAY_OPS_PORT: '0',
      BALLAST_GATEWAY_MAX_CONNECTIONS: '100',
      BALLAST_GATEWAY_MAX_CONNECTIONS_PER_CLIENT: '40',
      BALLAST_GATEWAY_HEADERS_TIMEOUT_MS: '120000',
      BALLAST_GATEWAY_REQUEST_TIMEOUT_MS: '120000',
      BALLAST_GATEWAY_IDLE_TIMEOUT_MS: '120000',
    });
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    await echo?.close();
  });

  it('does not let one client’s idle sockets stop another client being served', { timeout: 60_000 }, async () => {
    const url = String(gateway.info.url);
    // 200 idle sockets from 127.0.0.2: twice the gateway's whole connection limit.
    let closed = 0;
    const sockets = Array.from({ length: 200 }, () => {
      const socket = connect({ ...hostPort(url), localAddress: '127.0.0.2' });
      void closedSocket(socket).then(() => closed++);
      return socket;
    });
    try {
      // All but the client's 40 are closed at once; those 40 are held (no timeout reaches them).
      await eventually('the sockets over the client’s limit to be closed', 20_000, async () => (closed >= 160 ? true : undefined));
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${url}/v1/resize?width=8`, { method: 'POST', body: JPEG_START }); // from 127.0.0.1
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
      expect(closed).toBe(160);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
});

describe('a paused API server', () => {
  let system: Distributed;
  let queue: RedisQueue;
  beforeAll(async () => {
    system = await startDistributed({ redisUrl: redis.url, apis: 2, workers: 0 });
    queue = new RedisQueue({ connection: redis.url, minReplicas: 0 });
  }, 120_000);
  afterAll(async () => {
    await queue?.close();
    await system?.close();
  });

  it('holds a request no longer than its deadline, and its job is cancelled', { timeout: 120_000 }, async () => {
    const from = Date.now();
    const before = await queue.depth();
    // No worker: the job waits in the queue while its API server waits for it.
    const answer = resize(system.url, 'width=16&deadlineMs=3000', jpeg);
    await eventually('the job to be enqueued', 20_000, async () => ((await queue.depth()) > before ? true : undefined));
    for (const api of system.apis) api.proc.kill('SIGSTOP');
    // They stay stopped far longer than the request's deadline (3 s) plus the gateway's grace.
    let resumed = false;
    const resume = (): void => {
      resumed = true;
      for (const api of system.apis) api.proc.kill('SIGCONT');
    };
    const timer = setTimeout(resume, 10_000);
    try {
      const res = await answer;
      // Answered while both API servers were still stopped: the gateway cut the wait itself.
      expect([res.status, await errorCode(res), resumed]).toEqual([504, 'ERR_BALLAST_UPSTREAM_TIMEOUT', false]);
    } finally {
      clearTimeout(timer);
      if (!resumed) resume();
    }
    const cancelled = await eventually('the job to be cancelled', 20_000, async () => {
      for await (const entry of queue.ledger(from, Date.now() + 1000)) if (entry.outcome === 'cancelled') return entry;
      return undefined;
    });
    expect(cancelled.outcome).toBe('cancelled');
  });
});

/** The state of upstream `id` in the gateway's balancer (`healthy`, `down`, …). */
async function upstreamState(ops: string, id: string): Promise<string | undefined> {
  const balancer = (await stats(ops)).balancer as { endpoints: Array<{ id: string; state: string }> };
  return balancer.endpoints.find((e) => e.id === id)?.state;
}

describe('a paused API server, beside running ones', () => {
  let system: Distributed;
  beforeAll(async () => {
    system = await startDistributed({ redisUrl: redis.url, apis: 2, worker: { BALLAST_WORKER_CONCURRENCY: '2' } });
  }, 120_000);
  afterAll(async () => {
    await system?.close();
  });

  it('is taken out of rotation by the failure detector: new requests go to the other', { timeout: 120_000 }, async () => {
    const api = system.apis[0];
    await eventually('both API servers to be in rotation', 30_000, async () =>
      (await upstreamState(system.ops, 'api-1')) === 'healthy' ? true : undefined,
    );
    api?.proc.kill('SIGSTOP');
    try {
      // Its health probes go unanswered: the phi-accrual detector suspects it (about 2 s with the defaults).
      await eventually('the paused API server to be taken out of rotation', 30_000, async () =>
        (await upstreamState(system.ops, 'api-1')) === 'down' ? true : undefined,
      );
      const seen = await steady(system.url, 20);
      expect(seen.get('200') ?? 0, JSON.stringify([...seen])).toBe(20);
    } finally {
      api?.proc.kill('SIGCONT');
    }
    await eventually('the resumed API server to be back in rotation', 30_000, async () =>
      (await upstreamState(system.ops, 'api-1')) === 'healthy' ? true : undefined,
    );
  });
});

describe('forged headers and internal errors', () => {
  let gateway: ServiceProcess;
  const closers: Array<{ close(): Promise<void> }> = [];
  beforeAll(async () => {
    const app = new Hono<AppEnv>();
    app.get('/healthz', (c) => c.json({ ok: true }));
    app.post('/v1/resize', async (c) => {
      await c.req.arrayBuffer();
      if (c.req.query('crash') === '1') {
        c.env.incoming?.socket.destroy(); // "socket hang up" on the gateway's side
        return new Promise<Response>(() => {});
      }
      return c.json({ headers: c.req.header() });
    });
    const echo = await listen(app.fetch);
    closers.push(echo);
    gateway = await spawnService('gateway', {
      BALLAST_GATEWAY_UPSTREAMS: echo.url,
      BALLAST_GATEWAY_PORT: '0',
      BALLAST_GATEWAY_OPS_PORT: '0',
      BALLAST_GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8',
    });
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    for (const c of closers) await c.close();
  });

  it('replaces client forwarding headers with its own and drops Connection-nominated ones', async () => {
    const url = String(gateway.info.url);
    const res = await rawRequest(url, 'POST /v1/resize?width=1', [
      'X-Forwarded-For: 6.6.6.6',
      'X-Forwarded-Host: evil.example',
      'X-Forwarded-Proto: https',
      'X-Real-IP: 6.6.6.6',
      'Forwarded: for=6.6.6.6;proto=https',
      'Connection: close, x-internal-token',
      'X-Internal-Token: secret',
    ]);
    const headers = (
      JSON.parse(res.body.slice(res.body.indexOf('{'), res.body.lastIndexOf('}') + 1)) as { headers: Record<string, string> }
    ).headers;
    expect(headers).toMatchObject({
      'x-forwarded-for': '127.0.0.1',
      forwarded: 'for=127.0.0.1;host=x;proto=http',
      'x-forwarded-proto': 'http',
    });
    expect([headers['x-real-ip'], headers['x-internal-token'], headers['x-forwarded-host']]).toEqual([undefined, undefined, 'x']);
  });

  it('answers an upstream that breaks off with a documented code and no internal text', async () => {
    const res = await fetch(`${String(gateway.info.url)}/v1/resize?crash=1`, { method: 'POST', body: JPEG_START });
    const text = await res.text();
    expect([res.status, JSON.parse(text).error.code]).toEqual([502, 'ERR_BALLAST_UPSTREAM_UNREACHABLE']);
    expect(text).not.toMatch(/hang up|ECONN|EPIPE|127\.0\.0\.1|:\d{4,5}/);
  });
});

// Raw sockets: fetch normalises targets and refuses to send some headers.

/** The first bytes of a JPEG: enough for the gateway to take a body for an image. */
const JPEG_START = Buffer.from([0xff, 0xd8, 0xff, 0xe0]);

function hostPort(url: string): { port: number; host: string } {
  const u = new URL(url);
  return { port: Number(u.port), host: u.hostname };
}

function socketTo(url: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(hostPort(url), () => resolve(socket));
    socket.once('error', reject);
  });
}

function closedSocket(socket: Socket): Promise<void> {
  socket.on('data', () => {});
  socket.on('error', () => {});
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

function rawRequest(url: string, line: string, headers: string[] = []): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(hostPort(url), () =>
      socket.write(
        Buffer.concat([
          Buffer.from(
            `${line} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headers.join('\r\n')}${headers.length ? '\r\n' : ''}Content-Length: ${JPEG_START.length}\r\n\r\n`,
          ),
          JPEG_START,
        ]),
      ),
    );
    let text = '';
    socket.on('data', (chunk) => {
      text += String(chunk);
    });
    socket.on('end', () =>
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) }),
    );
    socket.on('error', reject);
  });
}

async function rawStatus(url: string, target: string): Promise<number> {
  return (await rawRequest(url, `GET ${target}`)).status;
}
