import { Hono } from 'hono';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HttpError } from './errors.ts';
import { memoryLogger } from './log.ts';
import { requestMetrics } from './metrics.ts';
import { type AppEnv, annotate, errorHandler, measure, notFound, requestContext } from './middleware.ts';
import { operationalApp } from './operational.ts';

function app() {
  const { logger, entries } = memoryLogger();
  const registry = new Registry();
  const metrics = requestMetrics(registry, 'ballast_test', 'Test requests');
  const a = new Hono<AppEnv>();
  a.use(requestContext(logger.child({ service: 'svc' })));
  a.use(measure(metrics));
  a.onError(errorHandler((error) => (error instanceof RangeError ? new Response('mapped', { status: 418 }) : undefined)));
  a.notFound(notFound);
  a.get('/ok', (c) => {
    annotate(c, { upstream: 'u-1' });
    c.var.log.warn('inside');
    return c.text('ok');
  });
  a.get('/http', () => {
    throw new HttpError(429, 'ERR_BALLAST_QUOTA', 'over quota', { 'retry-after': '3' });
  });
  a.get('/boom', () => {
    throw new Error('read ECONNRESET at 10.0.0.7:6379');
  });
  a.get('/mapped', () => {
    throw new RangeError('x');
  });
  return { a, entries, registry };
}

describe('requestContext', () => {
  it('keeps a plain client request id, replaces anything else, and names it on every line of the request', async () => {
    const { a, entries } = app();
    const res = await a.request('/ok', { headers: { 'x-request-id': 'abc-1' } });
    expect(res.headers.get('x-request-id')).toBe('abc-1');
    expect(entries.map((e) => [e.level, e.msg, e.requestId, e.service])).toEqual([
      ['warn', 'inside', 'abc-1', 'svc'],
      ['info', 'request', 'abc-1', 'svc'],
    ]);
    expect(entries[1]).toMatchObject({ method: 'GET', path: '/ok', status: 200, upstream: 'u-1' });
    expect(typeof entries[1]?.ms).toBe('number');
    expect(entries[1]?.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    const forged = await a.request('/ok', { headers: { 'x-request-id': '{"level":"error"}' } });
    expect(forged.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('errorHandler', () => {
  it('answers an HttpError with its status, headers and the one error body', async () => {
    const { a } = app();
    const res = await a.request('/http');
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(await res.json()).toEqual({ error: { code: 'ERR_BALLAST_QUOTA', message: 'over quota' } });
  });

  it('answers an unexpected error with 500 and no internal text, and logs it with the request id', async () => {
    const { a, entries } = app();
    const res = await a.request('/boom', { headers: { 'x-request-id': 'r-9' } });
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toMatch(/ECONNRESET|10\.0\.0\.7/);
    expect(JSON.parse(text).error.code).toBe('ERR_BALLAST_INTERNAL');
    const logged = entries.find((e) => e.level === 'error');
    expect(logged).toMatchObject({ requestId: 'r-9', msg: 'internal error', err: { message: 'read ECONNRESET at 10.0.0.7:6379' } });
  });

  it('lets the service map its own errors first, and answers unknown routes 404', async () => {
    const { a } = app();
    expect((await a.request('/mapped')).status).toBe(418);
    const missing = await a.request('/nope');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('ERR_BALLAST_NOT_FOUND');
  });
});

describe('measure', () => {
  it('counts every answer by status and observes its duration', async () => {
    const { a, registry } = app();
    await a.request('/ok');
    await a.request('/http');
    const text = await registry.metrics();
    expect(text).toContain('ballast_test_requests_total{status="200"} 1');
    expect(text).toContain('ballast_test_requests_total{status="429"} 1');
    expect(text).toContain('ballast_test_request_seconds_count 2');
  });
});

describe('operationalApp', () => {
  it('serves health, readiness and metrics, and nothing else', async () => {
    const registry = new Registry();
    requestMetrics(registry, 'ballast_x', 'X');
    let ready = false;
    const ops = operationalApp({ service: 'x', registry, ready: () => ({ ready }) });
    expect(await (await ops.request('/healthz')).json()).toEqual({ service: 'x', ok: true });
    expect((await ops.request('/readyz')).status).toBe(503);
    ready = true;
    expect((await ops.request('/readyz')).status).toBe(200);
    const metrics = await ops.request('/metrics');
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(await metrics.text()).toContain('# TYPE ballast_x_request_seconds histogram');
    expect((await ops.request('/v1/resize')).status).toBe(404);
  });
});
