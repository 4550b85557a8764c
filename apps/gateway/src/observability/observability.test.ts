import { type Listening, listen, silentLogger } from '@ballast/app-shared';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway, type GatewayOptions, renderTrace, traceFromLogs } from '../index.ts';
import { outcomeOf, routeOf, sizeClassOf } from './classify.ts';
import { TenantLabels } from './tenants.ts';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

/**
 * A stand-in API server answering as the real one does: `?answer=` picks the status and
 * headers (a shed 503, a 504, a 500, a client error), `?tenant=` the tenant it names,
 * `?harvest=` a partial answer; every answer carries the API's Server-Timing.
 */
let release: () => void = () => {};
async function upstream(): Promise<Listening> {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true }));
  app.all('*', async (c) => {
    await c.req.arrayBuffer();
    const headers: Record<string, string> = {
      'server-timing': 'admission;dur=1, enqueue;dur=2, queue_wait;dur=30, conversion;dur=40, api;dur=80',
      'x-ballast-tenant': c.req.query('tenant') ?? 'anonymous',
    };
    const harvest = c.req.query('harvest');
    if (harvest) headers['x-ballast-harvest'] = harvest;
    switch (c.req.query('answer')) {
      case 'slow':
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return c.body(new Uint8Array(10), 200, headers);
      case 'shed':
        return c.json({ error: { code: 'ERR_BALLAST_OVERLOADED', message: 'shed' } }, 503, {
          ...headers,
          'x-ballast-shed': 'queueTimeout',
        });
      case 'unavailable':
        return c.json({ error: { code: 'ERR_BALLAST_QUEUE_UNAVAILABLE', message: 'x' } }, 503, headers);
      case 'timeout':
        return c.json({ error: { code: 'ERR_BALLAST_DEADLINE', message: 'x' } }, 504, headers);
      case 'fail':
        return c.json({ error: { code: 'ERR_BALLAST_INTERNAL', message: 'x' } }, 500, headers);
      case 'bad':
        return c.json({ error: { code: 'ERR_BALLAST_INVALID_OPTION', message: 'x' } }, 400, headers);
      default:
        return c.body(new Uint8Array(2048), 200, { ...headers, 'content-type': 'image/jpeg' });
    }
  });
  const server = await listen(app.fetch);
  open.push(server);
  return server;
}

async function gatewayOver(
  servers: Listening[],
  options: Partial<GatewayOptions> = {},
): Promise<{ gateway: Gateway; url: string; ops: string }> {
  const gateway = createGateway({
    upstreams: servers.map((s, i) => ({ id: `api-${i + 1}`, url: s.url })),
    healthIntervalMs: 50,
    logger: silentLogger(),
    throttle: false,
    ejectAfterFailures: 0,
    ...options,
  });
  const server = await listen(gateway.app.fetch);
  const ops = await listen(gateway.ops.fetch);
  open.push(gateway, server, ops);
  return { gateway, url: server.url, ops: ops.url };
}

const send = async (url: string, query: string, init: RequestInit = {}): Promise<Response> => {
  // 1000 bytes that begin like a JPEG: the gateway refuses bodies that are no image before forwarding them.
  const res = await fetch(`${url}/v1/resize?${query}`, {
    method: 'POST',
    body: Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(996)]),
    ...init,
  });
  await res.arrayBuffer();
  return res;
};

/** Polls `check` until it holds (the gateway's own state, read over HTTP). */
async function eventually(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
}

/** The value of one series in Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('front-door classification', () => {
  it.each([
    [200, false, 'success'],
    [202, false, 'success'],
    [304, false, 'success'],
    [400, false, 'client_error'],
    [413, false, 'client_error'],
    [499, false, 'client_error'],
    [503, true, 'shed'],
    [503, false, 'upstream_failure'],
    [504, false, 'timeout'],
    [500, false, 'upstream_failure'],
    [502, true, 'upstream_failure'],
  ] as const)('status %i (shed header: %s) is %s', (status, shed, outcome) => {
    expect(outcomeOf(status, shed)).toBe(outcome);
  });

  it('routes, and image size classes around 1 MB', () => {
    expect(routeOf('POST', '/v1/resize')).toBe('resize');
    expect(routeOf('GET', '/v1/resize')).toBe('other');
    expect(routeOf('GET', '/v1/jobs/abc')).toBe('job');
    expect(routeOf('POST', '/v1/renditions')).toBe('resize');
    expect(routeOf('GET', '/v1/renditions/acme.x.y')).toBe('job');
    expect(routeOf('GET', '/anything')).toBe('other');
    expect(sizeClassOf('POST', '999999')).toBe('under_1mb');
    expect(sizeClassOf('POST', '1000000')).toBe('1mb_and_over');
    expect(sizeClassOf('POST', undefined)).toBe('unknown');
    expect(sizeClassOf('POST', '12e3')).toBe('unknown');
    expect(sizeClassOf('GET', undefined)).toBe('none');
  });

  it('gives the first tenants labels of their own and counts the rest as other', () => {
    const labels = new TenantLabels(2);
    expect(['a', 'b', 'c', 'a', 'd'].map((t) => labels.label(t))).toEqual(['a', 'b', 'other', 'a', 'other']);
    expect(labels.label('bad tenant"}')).toBe('invalid');
    expect(labels.label(undefined)).toBe('anonymous');
    expect(() => new TenantLabels(-1)).toThrow(/maxTenants/);
  });
});

describe('gateway observability', () => {
  it('counts every answer by outcome, so yield is computable, with tenants bounded', async () => {
    const { url, ops } = await gatewayOver([await upstream()], { observability: { maxTenants: 2 } });
    for (const q of [
      'tenant=t1',
      'tenant=t1',
      'tenant=t2',
      'tenant=t3',
      'answer=shed',
      'answer=timeout',
      'answer=fail',
      'answer=unavailable',
    ]) {
      await send(url, q);
    }
    await send(url, 'answer=bad&tenant=t1');
    const metrics = await (await fetch(`${ops}/metrics`)).text();
    const count = (outcome: string, tenant: string): number | undefined =>
      sample(metrics, `ballast_frontdoor_requests_total{route="resize",outcome="${outcome}",tenant="${tenant}"}`);
    expect(count('success', 't1')).toBe(2);
    expect(count('success', 't2')).toBe(1);
    expect(count('success', 'other')).toBe(1); // t3: over the two-tenant bound
    expect(count('shed', 'anonymous')).toBe(1);
    expect(count('timeout', 'anonymous')).toBe(1);
    expect(count('upstream_failure', 'anonymous')).toBe(2);
    expect(count('client_error', 't1')).toBe(1);
    expect(sample(metrics, 'ballast_frontdoor_request_duration_seconds_count{route="resize",outcome="success",size="under_1mb"}')).toBe(4);
    expect(sample(metrics, 'ballast_frontdoor_harvest_ratio_count')).toBe(4);
    expect(sample(metrics, 'ballast_frontdoor_harvest_ratio_sum')).toBe(4);
    expect(sample(metrics, 'ballast_failure_detector_phi{monitor="upstreams",node="api-1"}')).toBeGreaterThanOrEqual(0);
  });

  it("records each stage from the API's Server-Timing, and the timeline of a request by its id", async () => {
    const { url, ops } = await gatewayOver([await upstream()]);
    const res = await send(url, 'harvest=0.5', { headers: { 'x-request-id': 'trace-me' } });
    expect(res.status).toBe(200);
    const metrics = await (await fetch(`${ops}/metrics`)).text();
    for (const span of ['gateway', 'admission', 'enqueue', 'queue_wait', 'conversion', 'response']) {
      expect(sample(metrics, `ballast_request_span_duration_seconds_count{span="${span}"}`), span).toBe(1);
    }
    expect(sample(metrics, 'ballast_request_span_duration_seconds_sum{span="conversion"}')).toBe(0.04);
    expect(sample(metrics, 'ballast_frontdoor_harvest_ratio_sum')).toBe(0.5);
    const timeline = (await (await fetch(`${ops}/trace/trace-me`)).json()) as {
      status: number;
      outcome: string;
      upstream: string;
      stages: Array<{ stage: string; startMs: number; durationMs: number }>;
    };
    expect(timeline).toMatchObject({ status: 200, outcome: 'success', upstream: 'api-1' });
    expect(timeline.stages.map((s) => s.stage)).toEqual(['gateway', 'admission', 'enqueue', 'queue_wait', 'conversion', 'response']);
    expect(timeline.stages.slice(1, 5)).toEqual([
      { stage: 'admission', startMs: timeline.stages[1]?.startMs, durationMs: 1 },
      { stage: 'enqueue', startMs: (timeline.stages[1]?.startMs ?? 0) + 1, durationMs: 2 },
      { stage: 'queue_wait', startMs: (timeline.stages[1]?.startMs ?? 0) + 3, durationMs: 30 },
      { stage: 'conversion', startMs: (timeline.stages[1]?.startMs ?? 0) + 33, durationMs: 40 },
    ]);
    const unknown = await fetch(`${ops}/trace/nope`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('ERR_BALLAST_UNKNOWN_REQUEST');
    // Not on the public port.
    expect((await fetch(`${url}/trace/trace-me`)).status).toBe(404);
  });

  it("classifies the gateway's own sheds (at its request limit) as shed", async () => {
    const { url, ops } = await gatewayOver([await upstream()], { maxInflight: 1 });
    // Hold the one slot with a request its API server answers slowly, then send another.
    const holding = send(url, 'answer=slow');
    await eventually(async () => ((await (await fetch(`${ops}/gateway/stats`)).json()) as { inflight: number }).inflight === 1);
    const turnedAway = await send(url, '');
    expect(turnedAway.status).toBe(503);
    expect(turnedAway.headers.get('x-ballast-shed')).toBe('gatewayFull');
    release();
    expect((await holding).status).toBe(200);
    const metrics = await (await fetch(`${ops}/metrics`)).text();
    expect(sample(metrics, 'ballast_frontdoor_requests_total{route="resize",outcome="shed",tenant="anonymous"}')).toBe(1);
  });

  it('serves the dashboard page, its assets, its data and server-sent events on the operational listener only', async () => {
    const { gateway, url, ops } = await gatewayOver([await upstream(), await upstream()], {
      observability: { dashboard: { intervalMs: 50 } },
    });
    await send(url, '');
    const page = await fetch(`${ops}/dashboard`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/dashboard/assets/uplot.js');
    for (const asset of ['uplot.js', 'uplot.css', 'dashboard.js', 'dashboard.css']) {
      expect((await fetch(`${ops}/dashboard/assets/${asset}`)).status, asset).toBe(200);
    }
    expect((await fetch(`${ops}/dashboard/assets/..%2F..%2Fpackage.json`)).status).toBe(404);
    // Not on the public port.
    expect((await fetch(`${url}/dashboard`)).status).toBe(404);
    expect((await fetch(`${url}/dashboard/data`)).status).toBe(404);

    const sampled = await gateway.observability?.sampler.sample();
    expect(sampled?.upstreams.map((u) => u.id)).toEqual(['api-1', 'api-2']);
    const data = (await (await fetch(`${ops}/dashboard/data`)).json()) as {
      intervalMs: number;
      samples: Array<{ t: number; rps: number }>;
    };
    expect(data.intervalMs).toBe(50);
    expect(data.samples.length).toBeGreaterThan(0);
    const newest = data.samples.at(-1)?.t ?? 0;
    const later = (await (await fetch(`${ops}/dashboard/data?since=${newest}`)).json()) as { samples: unknown[] };
    expect(later.samples.every((s) => (s as { t: number }).t > newest)).toBe(true);

    const events = await fetch(`${ops}/dashboard/events`);
    expect(events.headers.get('content-type')).toContain('text/event-stream');
    const reader = (events.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toContain('event: sample');
    expect(JSON.parse(text.split('data: ')[1]?.split('\n')[0] ?? '{}')).toHaveProperty('upstreams');
    await reader.cancel();
  });

  it('can be turned off', async () => {
    const { gateway, url, ops } = await gatewayOver([await upstream()], { observability: false });
    await send(url, '');
    expect(gateway.observability).toBeUndefined();
    expect(await (await fetch(`${ops}/metrics`)).text()).not.toContain('ballast_frontdoor');
    expect((await fetch(`${ops}/dashboard`)).status).toBe(404);
  });
});

describe('trace over the logs', () => {
  it("rebuilds a request's stages from the gateway's, the API server's and the worker's lines, whatever their order", () => {
    const lines = [
      {
        time: '2026-01-01T00:00:00.090Z',
        level: 'info',
        service: 'worker',
        msg: 'job done',
        requestId: 'r1',
        queuedMs: 5,
        wallMs: 50,
        cpuMs: 20,
        tenant: 't1',
      },
      {
        time: '2026-01-01T00:00:00.100Z',
        level: 'info',
        service: 'gateway',
        msg: 'request',
        requestId: 'r1',
        method: 'POST',
        path: '/v1/resize',
        status: 200,
        upstream: 'api-1',
        ms: 80,
      },
      {
        time: '2026-01-01T00:00:00.099Z',
        level: 'info',
        service: 'api-1',
        msg: 'request',
        requestId: 'r1',
        mode: 'sync',
        tenant: 't1',
        status: 200,
        ms: 70,
        stages: { admission: 1, enqueue: 4 },
      },
      { time: '2026-01-01T00:00:00.099Z', level: 'info', service: 'api-2', msg: 'request', requestId: 'other', mode: 'sync', ms: 1 },
      { level: 'info', msg: 'no id' },
    ];
    const trace = traceFromLogs('r1', lines);
    expect(trace.lines.map((l) => l.service)).toEqual(['worker', 'api-1', 'gateway']);
    expect(trace.stages).toEqual([
      { stage: 'gateway', startMs: 0, durationMs: 10 },
      { stage: 'admission', startMs: 10, durationMs: 1 },
      { stage: 'enqueue', startMs: 11, durationMs: 4 },
      { stage: 'queue_wait', startMs: 15, durationMs: 5 },
      { stage: 'conversion', startMs: 20, durationMs: 50 },
    ]);
    expect(trace).toMatchObject({ status: 200, tenant: 't1', upstream: 'api-1', totalMs: 80, method: 'POST' });
    const text = renderTrace(trace);
    expect(text).toContain('request r1 POST /v1/resize → 200');
    expect(text).toMatch(/conversion\s+20\.0 ms\s+\+\s+50\.0 ms\s+\|\s+█+/);
    expect(traceFromLogs('missing', lines)).toMatchObject({ lines: [], stages: [] });
  });
});
