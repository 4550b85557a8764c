/**
 * Identity benchmarks (`npm run bench:identity`; `-- --quick` for fewer rounds).
 *
 * 1. The authentication decision in process: an edge-cache hit, an unknown key answered
 *    from the miss cache, and malformed / bad-checksum keys, with the store lookups each
 *    caused (counted at the source).
 * 2. Propagation across three API-server processes on Redis (real redis-server and
 *    PostgreSQL): time from the management plane's answer to every server refusing a
 *    revoked key; the same with every publish lost (no pub/sub: the poll catches up);
 *    time until a new key works on every server.
 * 3. Tenant isolation: a tenant sending 10× its rate limit against another tenant's
 *    steady traffic, through the API with real resizes; the quiet tenant's p99 loaded
 *    versus unloaded, measured in one run.
 *
 * Writes benchmarks/results/identity.json and identity.md.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type ChangeSource, generateKey, IdentityClient, InProcessFeed, type KeyEntry, type TenantEntry } from '@ballast/app-identity';
import { startIdentityPlane } from '@ballast/app-identity/testing';
import { parseServerTiming } from '@ballast/app-shared';
import { Histogram } from '@ballast/common';
import sharp from 'sharp';
import { publishFigures } from '../lib/figures.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';

const quick = process.argv.includes('--quick');
const load = { before: loadavg()[0] as number };
const results: Record<string, unknown> = { machine: machine(), quick };
const sections: string[] = [];

function summary(h: Histogram): { p50: number; p99: number; max: number; n: number } {
  const s = h.summary();
  return { p50: s.p50, p99: s.p99, max: s.max, n: s.count };
}

// ---------------------------------------------------------------------------
// 1. The decision in process.

async function decisionCost(): Promise<void> {
  const feed = new InProcessFeed();
  let lookups = 0;
  const counting: ChangeSource = {
    kind: 'in-process',
    snapshot: () => feed.snapshot(),
    lookup: (hash) => {
      lookups++;
      return feed.lookup(hash);
    },
    changesSince: (v) => feed.changesSince(v),
    subscribe: (l) => feed.subscribe(l),
    close: () => feed.close(),
  };
  const tenant: TenantEntry = {
    kind: 'tenant',
    id: 'tn_bench',
    name: 'bench',
    plan: 'pro',
    quota: { requestsPerSecond: 50, concurrentJobs: 16, monthlyCpuSeconds: 1 },
    version: 1,
  };
  const keys = Array.from({ length: 10_000 }, () => generateKey());
  const entries: KeyEntry[] = keys.map((k, i) => ({
    kind: 'key',
    hash: k.hash,
    keyId: `key_${i}`,
    tenantId: tenant.id,
    prefix: k.prefix,
    status: 'active',
    version: i + 2,
  }));
  await feed.publish([tenant, ...entries]);
  const client = new IdentityClient({ source: counting });
  await client.start();
  const headers = keys.map((k) => `Bearer ${k.key}`);
  const unknown = `Bearer ${generateKey().key}`;
  await client.verify(unknown); // one lookup, then a cached miss
  const shapes: Record<string, string> = {
    'malformed: wrong prefix': `Bearer ghp_${'a'.repeat(36)}`,
    'malformed: bad checksum': `Bearer blst_${'a'.repeat(36)}`,
    'malformed: huge header': `Bearer ${'x'.repeat(100_000)}`,
    'missing header': '',
  };
  const n = quick ? 50_000 : 200_000;
  const rows: Row[] = [];
  const time = (name: string, header: (i: number) => string): void => {
    for (let i = 0; i < 20_000; i++) client.verify(header(i)); // warm up
    const before = lookups;
    const h = new Histogram();
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      client.verify(header(i));
      h.record((performance.now() - t0) * 1000);
    }
    const s = summary(h);
    rows.push({ decision: name, 'p50 µs': s.p50, 'p99 µs': s.p99, 'store lookups': lookups - before, calls: n });
  };
  time('edge-cache hit (10,000 keys cached)', (i) => headers[i % headers.length] as string);
  time('unknown key (cached miss)', () => unknown);
  for (const [name, header] of Object.entries(shapes)) time(name, () => header);
  await client.close();
  printTable('Authentication decision, in process (per call, timer included)', rows);
  results.decision = rows;
  sections.push(`## Authentication decision, in process\n\n${markdownTable(rows)}`);
}

// ---------------------------------------------------------------------------
// 2. Propagation across three processes on Redis.

interface Edge {
  child: ChildProcess;
  wait(key: string, until: 'ok' | 'refused'): Promise<number>;
}

async function startEdge(redisUrl: string, deaf: boolean): Promise<Edge> {
  const child = fork(fileURLToPath(new URL('./edge.ts', import.meta.url)), {
    env: { ...process.env, REDIS_URL: redisUrl, DEAF: deaf ? '1' : '0' },
    execArgv: ['--conditions=@ballast/source'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, (at: number) => void>();
  let next = 0;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`edge process exited with ${code}`)));
    child.on('message', (m: { ready?: boolean; id?: number; at?: number }) => {
      if (m.ready) resolve();
      else pending.get(m.id as number)?.(m.at as number);
    });
  });
  return {
    child,
    wait: (key, until) =>
      new Promise((resolve) => {
        const id = ++next;
        pending.set(id, resolve);
        child.send({ id, key, until });
      }),
  };
}

async function propagation(): Promise<void> {
  const plane = await startIdentityPlane();
  const admin = async (method: string, path: string, body?: unknown): Promise<Record<string, string>> =>
    (await plane.admin(method, path, body)).body;
  const now = (): number => performance.timeOrigin + performance.now();
  const tenant = await admin('POST', '/v1/tenants', { name: 'bench', plan: 'pro' });
  const rounds = quick ? 10 : 30;
  const rows: Row[] = [];
  const edges: Edge[] = [];
  try {
    for (const deaf of [false, true]) {
      const servers = await Promise.all([1, 2, 3].map(() => startEdge(plane.redis.url, deaf)));
      edges.push(...servers);
      const revoke = new Histogram();
      const create = new Histogram();
      for (let round = 0; round < (deaf ? Math.ceil(rounds / 2) : rounds); round++) {
        // A new key: from the management plane's answer until it works on all three servers.
        const issued = await admin('POST', `/v1/tenants/${tenant.id}/keys`);
        const answered = now();
        const usable = await Promise.all(servers.map((s) => s.wait(issued.key as string, 'ok')));
        create.record(Math.max(...usable) - answered);
        // Revocation: from the answer until all three servers refuse it.
        await admin('DELETE', `/v1/keys/${issued.id}`);
        const revokedAt = now();
        const refused = await Promise.all(servers.map((s) => s.wait(issued.key as string, 'refused')));
        for (const at of refused) revoke.record(Math.max(0, at - revokedAt));
      }
      const mode = deaf ? 'every publish lost (poll only)' : 'pub/sub';
      const r = summary(revoke);
      const c = summary(create);
      rows.push({ what: `revocation refused on every server, ${mode}`, 'p50 ms': r.p50, 'p99 ms': r.p99, 'max ms': r.max, samples: r.n });
      rows.push({ what: `new key usable on every server, ${mode}`, 'p50 ms': c.p50, 'p99 ms': c.p99, 'max ms': c.max, samples: c.n });
      for (const s of servers) s.child.disconnect();
    }
  } finally {
    for (const e of edges) if (e.child.connected) e.child.disconnect();
    await plane.close();
  }
  printTable('Propagation to three API-server processes (Redis feed, PostgreSQL store), from the management answer', rows);
  results.propagation = rows;
  sections.push(
    `## Propagation to three API-server processes\n\nFrom the management plane's answer; PostgreSQL store, Redis feed, three edge-cache processes.\n\n${markdownTable(rows)}`,
  );
}

// ---------------------------------------------------------------------------
// 3. Tenant isolation under a 10× burst.

/** What the API server process spent over a phase (its answer to an IPC `'stats'` message). */
interface ServerSpend {
  cpuMs: number;
  wallMs: number;
  loopDelayP50Ms: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  /** Requests refused over their tenant's rate in the phase. */
  refused: number;
}

/** The quiet tenant's requests of one phase: whole latency, and the API's stages of each (its `Server-Timing`). */
class Phase {
  readonly total = new Histogram();
  readonly stages = new Map<string, Histogram>();
  record(ms: number, timing: Record<string, number>): void {
    this.total.record(ms);
    for (const [stage, value] of Object.entries(timing)) {
      let h = this.stages.get(stage);
      if (!h) this.stages.set(stage, (h = new Histogram()));
      h.record(value);
    }
  }
  stage(name: string): { p50: number; p99: number } {
    const s = this.stages.get(name)?.summary();
    return { p50: s?.p50 ?? 0, p99: s?.p99 ?? 0 };
  }
}

async function isolation(): Promise<void> {
  const image = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#336699' } })
    .jpeg()
    .toBuffer();
  const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
  const server = spawn(process.execPath, ['--conditions=@ballast/source', here('./server.ts')], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const info = JSON.parse(await firstLine(server)) as { url: string; keys: Record<string, string>; quota: { requestsPerSecond: number } };
  const spent = (): Promise<ServerSpend> =>
    new Promise((resolve) => {
      server.once('message', (m) => resolve(m as ServerSpend));
      server.send('stats');
    });
  const send = async (key: string): Promise<{ status: number; ms: number; timing: Record<string, number> }> => {
    const t0 = performance.now();
    try {
      const response = await fetch(`${info.url}/v1/resize?width=16`, {
        method: 'POST',
        body: image,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'image/jpeg' },
      });
      await response.arrayBuffer();
      return { status: response.status, ms: performance.now() - t0, timing: parseServerTiming(response.headers.get('server-timing')) };
    } catch {
      return { status: 0, ms: performance.now() - t0, timing: {} }; // a connection error, counted apart
    }
  };
  const quietStatuses = new Map<number, number>();
  const quietRun = async (seconds: number, phase = new Phase()): Promise<Phase> => {
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      const { ms, status, timing } = await send(info.keys.tn_quiet as string);
      quietStatuses.set(status, (quietStatuses.get(status) ?? 0) + 1);
      if (status === 200) phase.record(ms, timing);
      await new Promise((r) => setTimeout(r, 100)); // about 10 requests/s, half its quota of 20
    }
    return phase;
  };
  const seconds = quick ? 6 : 20;
  /** Starts the noisy tenant's process and resolves once it is ready to send (its start-up is not the burst): `go()` starts it. */
  const noisyProcess = async (env: Record<string, string>): Promise<{ go(): Promise<Record<string, number>> }> => {
    const child = spawn(process.execPath, ['--conditions=@ballast/source', here('./noisy.ts')], {
      env: { ...process.env, URL: info.url, KEY: info.keys.tn_noisy as string, ...env },
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    const done = firstLine(child);
    await new Promise((resolve) => child.once('message', resolve));
    return {
      go: () => {
        child.send('go');
        return done.then((line) => JSON.parse(line) as Record<string, number>);
      },
    };
  };
  await quietRun(1); // warm-up, not measured
  await spent();
  const unloaded = await quietRun(seconds / 2);
  const spentAlone = [await spent()];
  // The noisy tenant, from its own process: 10× its rate, open loop.
  const rate = info.quota.requestsPerSecond * 10;
  const noisy = await noisyProcess({ RATE: String(rate), SECONDS: String(seconds) });
  const noisyDone = noisy.go();
  const loaded = await quietRun(seconds - 0.5);
  const noisyStatuses = await noisyDone;
  const spentLoaded = await spent();
  await quietRun(seconds / 2, unloaded); // alone again after the burst: before and after in one figure
  spentAlone.push(await spent());
  // What one refusal costs the API process, against its cheapest answer (GET /healthz), at the same rate.
  let idleCpuPerMs = 0;
  const perAnswer = async (target: 'refusal' | 'healthz'): Promise<{ us: number; answers: Record<string, number> }> => {
    const burst = await noisyProcess({ RATE: '200', SECONDS: quick ? '2' : '5', TARGET: target });
    await spent();
    const answers = await burst.go();
    const s = await spent();
    const busyMs = Math.max(0, s.cpuMs - idleCpuPerMs * s.wallMs);
    const n = Object.entries(answers).reduce((a, [status, count]) => a + (status === 'error' ? 0 : count), 0);
    return { us: (busyMs * 1000) / n, answers };
  };
  // The server's own CPU at rest (timers, the event-loop monitor), taken out of each answer's share.
  await spent();
  await new Promise((r) => setTimeout(r, quick ? 1000 : 2000));
  const idle = await spent();
  idleCpuPerMs = idle.cpuMs / idle.wallMs;
  const refusal = await perAnswer('refusal');
  const healthz = await perAnswer('healthz');
  server.kill('SIGTERM');
  const u = summary(unloaded.total);
  const l = summary(loaded.total);
  const phaseRow = (name: string, p: Phase, s: { p50: number; p99: number; n: number }): Row => ({
    phase: name,
    'p50 ms': s.p50,
    'p99 ms': s.p99,
    'API admission p99': p.stage('admission').p99,
    'enqueue p99': p.stage('enqueue').p99,
    'queue wait p99': p.stage('queue_wait').p99,
    'conversion p50': p.stage('conversion').p50,
    'conversion p99': p.stage('conversion').p99,
    'API total p50': p.stage('api').p50,
    'API total p99': p.stage('api').p99,
    requests: s.n,
  });
  const rows: Row[] = [phaseRow('quiet tenant alone', unloaded, u), phaseRow('quiet tenant, noisy tenant at 10× its quota', loaded, l)];
  const spendRow = (name: string, s: ServerSpend[]): Row => {
    const cpuMs = s.reduce((a, x) => a + x.cpuMs, 0);
    const wallMs = s.reduce((a, x) => a + x.wallMs, 0);
    return {
      phase: name,
      'API CPU %': (100 * cpuMs) / wallMs,
      'loop delay p99 ms': Math.max(...s.map((x) => x.loopDelayP99Ms)),
      'loop delay max ms': Math.max(...s.map((x) => x.loopDelayMaxMs)),
      refused: s.reduce((a, x) => a + x.refused, 0),
    };
  };
  const spend = [spendRow('quiet tenant alone', spentAlone), spendRow('noisy tenant at 10× its quota', [spentLoaded])];
  const quietAnswers = Object.fromEntries(quietStatuses);
  printTable(`Tenant isolation (real resizes; noisy tenant ${rate} requests/s against a ${rate / 10}/s quota)`, rows);
  printTable('The API server process over each phase (workers included)', spend);
  console.log(
    `  p99 ratio loaded/unloaded: ${fmt(l.p99 / u.p99)}; noisy tenant's answers: ${JSON.stringify(noisyStatuses)}; quiet tenant's: ${JSON.stringify(quietAnswers)}`,
  );
  const cost: Row[] = [
    {
      answer: "429 over the tenant's rate (POST with a 1 KB image)",
      'API CPU µs each': refusal.us,
      statuses: JSON.stringify(refusal.answers),
    },
    { answer: 'GET /healthz (the cheapest answer)', 'API CPU µs each': healthz.us, statuses: JSON.stringify(healthz.answers) },
  ];
  printTable('API CPU per answer, 200 requests/s from one client', cost);
  results.isolation = { rows, spend, cost, p99Ratio: l.p99 / u.p99, noisyStatuses, quietStatuses: quietAnswers };
  sections.push(
    `## Tenant isolation under a 10× burst\n\nAPI server, noisy tenant and quiet tenant in three processes; the noisy tenant's quota ${rate / 10} requests/s and 1 concurrent job, the quiet tenant's 20 requests/s and 1 job (it sends about 10/s, one at a time), 2 worker slots. Stages are the API's \`Server-Timing\` of the quiet tenant's answers.\n\n${markdownTable(rows)}\n\np99 ratio loaded/unloaded: **${fmt(l.p99 / u.p99)}**; the noisy tenant's answers: ${JSON.stringify(noisyStatuses)}; the quiet tenant's: ${JSON.stringify(quietAnswers)} (0 = connection error).\n\nThe API server process (its in-process workers included) over each phase:\n\n${markdownTable(spend)}\n\nWhat one refusal costs the API process (its CPU time over a burst of 200 requests/s from one client, less its CPU at rest over as long, divided by the answers), beside its cheapest answer:\n\n${markdownTable(cost)}`,
  );
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0] as string);
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code} before answering`)));
  });
}

// `-- --only=isolation` (or decision, propagation) runs one section.
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
if (!only || only === 'decision') await decisionCost();
if (!only || only === 'propagation') await propagation();
if (!only || only === 'isolation') await isolation();
const after = loadavg()[0] as number;
results.loadAverage = { before: load.before, after };
if (only) {
  // One section is a development run: it leaves the results of the full run alone.
  console.log(`\nload average ${fmt(load.before)} → ${fmt(after)}; --only=${only}: results files not written`);
  process.exit(0);
}
writeResult('identity.json', results);
writeResult(
  'identity.md',
  `# Identity benchmark\n\n\`npm run bench:identity${quick ? ' -- --quick' : ''}\` on ${(results.machine as { cpus: number }).cpus} cores, Node ${process.version}; 1-minute load average ${fmt(load.before)} before, ${fmt(after)} after.\n\n${sections.join('\n\n')}\n`,
);
await publishFigures('identity');
console.log(`\nload average ${fmt(load.before)} → ${fmt(after)}; results in benchmarks/results/identity.{json,md}`);
process.exit(0);
