import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import type { FailureDetectorError } from './errors.ts';
import { FixedTimeoutDetector } from './fixed-timeout.ts';
import { heartbeatHandler } from './hono.ts';
import { HealthPoller, httpHeartbeatSender, type ProbeEvent } from './http.ts';
import { HeartbeatMonitor } from './monitor.ts';

/** A real HTTP server on a free loopback port. */
async function listen(app: Hono): Promise<{ url: string; close: () => Promise<void> }> {
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** Resolves with the first event of `on` that satisfies `predicate`. */
function next<T>(on: (listener: (event: T) => void) => () => void, predicate: (event: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const off = on((event) => {
      if (!predicate(event)) return;
      off();
      resolve(event);
    });
  });
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe('httpHeartbeatSender → heartbeatHandler over real HTTP', () => {
  it('delivers heartbeats that keep the node alive in the monitor', async () => {
    const monitor = new HeartbeatMonitor({ detector: () => new FixedTimeoutDetector({ timeoutMs: 2000 }) });
    cleanup.push(() => monitor.close());
    const app = new Hono();
    app.post('/heartbeats', heartbeatHandler(monitor));
    const server = await listen(app);
    cleanup.push(server.close);

    // A short interval keeps the test fast; a generous timeout keeps it stable on a busy machine.
    const sender = httpHeartbeatSender({ url: `${server.url}/heartbeats`, id: 'api-1', intervalMs: 30, timeoutMs: 5000 });
    cleanup.push(() => sender.close());
    const latencies: number[] = [];
    sender.on('sent', ({ latencyMs }) => latencies.push(latencyMs));
    await next<{ seq: number }>(
      (l) => sender.on('sent', l),
      () => latencies.length >= 4,
    );
    await sender.close();
    const sent = sender.stats().sent;
    expect(sent).toBeGreaterThanOrEqual(4);
    expect(sender.stats().failed).toBe(0);
    expect(latencies.every((ms) => ms >= 0)).toBe(true);
    expect(monitor.nodes()).toEqual(['api-1']);
    expect(monitor.stats().nodes[0]?.heartbeats).toBe(sent);
    expect(monitor.state('api-1')).toBe('alive');
  });

  it('reports a non-2xx answer with its status', async () => {
    const app = new Hono();
    app.post('/heartbeats', (c) => c.text('nope', 503));
    const server = await listen(app);
    cleanup.push(server.close);
    const sender = httpHeartbeatSender({ url: `${server.url}/heartbeats`, id: 'api-1', intervalMs: 1000 });
    cleanup.push(() => sender.close());
    const { error } = await next<{ error: FailureDetectorError }>((l) => sender.on('fail', l));
    expect(error.code).toBe('ERR_BALLAST_HEARTBEAT_FAILED');
    expect(error.status).toBe(503);
    expect(error.message).toBe('heartbeat 0 of api-1 got HTTP 503');
  });

  it('reports a refused connection with its cause', async () => {
    const server = await listen(new Hono());
    await server.close();
    const sender = httpHeartbeatSender({ url: server.url, id: 'api-1', intervalMs: 1000, headers: { authorization: 'Bearer x' } });
    cleanup.push(() => sender.close());
    const { error } = await next<{ error: FailureDetectorError }>((l) => sender.on('fail', l));
    expect(error.code).toBe('ERR_BALLAST_HEARTBEAT_FAILED');
    expect(error.status).toBeUndefined();
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('rejects a URL that is not absolute', () => {
    expect(() => httpHeartbeatSender({ url: '/heartbeats', id: 'a' })).toThrow(
      expect.objectContaining({ code: 'ERR_BALLAST_INVALID_OPTION', message: 'url must be an absolute URL, got "/heartbeats"' }),
    );
  });
});

describe('HealthPoller against a real /healthz', () => {
  async function healthServer(): Promise<{
    url: string;
    setStatus: (status: number | 'hang') => void;
    entered: Promise<void>;
    close: () => Promise<void>;
  }> {
    let status: number | 'hang' = 200;
    let onEnter = (): void => undefined;
    const entered = new Promise<void>((resolve) => (onEnter = resolve));
    const app = new Hono();
    app.get('/healthz', async (c) => {
      onEnter();
      if (status === 'hang') await new Promise(() => undefined);
      return c.json({ ok: status === 200 }, status as 200);
    });
    const server = await listen(app);
    return { ...server, entered, setStatus: (s) => (status = s) };
  }

  it('turns healthy answers into heartbeats and lets the monitor suspect a node that turns unhealthy', async () => {
    const monitor = new HeartbeatMonitor({ detector: () => new FixedTimeoutDetector({ timeoutMs: 300 }), checkIntervalMs: 10 });
    cleanup.push(() => monitor.close());
    const server = await healthServer();
    cleanup.push(server.close);
    const poller = new HealthPoller({
      monitor,
      targets: [{ id: 'api-1', url: `${server.url}/healthz` }],
      intervalMs: 20,
      timeoutMs: 5000,
    });
    cleanup.push(() => poller.close());
    expect(monitor.nodes()).toEqual(['api-1']);

    await next<ProbeEvent>(
      (l) => poller.on('probe', l),
      ({ ok }) => ok,
    );
    expect(monitor.stats().heartbeats).toBeGreaterThanOrEqual(1);

    server.setStatus(503);
    const failed = await next<ProbeEvent>(
      (l) => poller.on('probe', l),
      ({ status }) => status === 503,
    );
    expect(failed).toMatchObject({ id: 'api-1', ok: false, status: 503 });
    expect(failed.error?.code).toBe('ERR_BALLAST_PROBE_FAILED');
    await next((l) => monitor.on('suspect', l));
    expect(monitor.state('api-1')).toBe('suspect');

    server.setStatus(200);
    const alive = await next((l) => monitor.on('alive', l));
    expect(alive).toMatchObject({ id: 'api-1', from: 'suspect' });
    expect(poller.stats()).toMatchObject({ targets: 1 });
    expect(poller.stats().healthy).toBeGreaterThanOrEqual(2);
    expect(poller.stats().failed).toBeGreaterThanOrEqual(1);
  });

  it('times out a probe that hangs', async () => {
    const monitor = new HeartbeatMonitor();
    cleanup.push(() => monitor.close());
    const server = await healthServer();
    cleanup.push(server.close);
    server.setStatus('hang');
    const poller = new HealthPoller({ monitor, targets: [{ id: 'api-1', url: `${server.url}/healthz` }], intervalMs: 200, timeoutMs: 50 });
    cleanup.push(() => poller.close());
    const failed = await next<ProbeEvent>((l) => poller.on('probe', l));
    expect(failed.ok).toBe(false);
    expect(failed.status).toBeUndefined();
    expect(failed.error?.message).toMatch(/^probe of api-1 failed: timed out after 50 ms/);
  });

  it('close() aborts a probe under way at once and reports nothing for it', async () => {
    const monitor = new HeartbeatMonitor();
    cleanup.push(() => monitor.close());
    const server = await healthServer();
    cleanup.push(server.close);
    server.setStatus('hang');
    // The probe's own timeout (a minute) outlasts the test's: close() returns only if it aborts the probe.
    const poller = new HealthPoller({ monitor, targets: [{ id: 'api-1', url: `${server.url}/healthz` }], intervalMs: 60_000 });
    const probes: ProbeEvent[] = [];
    poller.on('probe', (event) => probes.push(event));
    await server.entered;
    await poller.close();
    expect(probes).toEqual([]);
    expect(poller.stats()).toEqual({ targets: 0, healthy: 0, failed: 0 });
    // The monitor keeps its node: the poller only stops feeding it.
    expect(monitor.nodes()).toEqual(['api-1']);
  });

  it('uses isHealthy to judge the answer, and add/remove manage targets and monitor nodes', async () => {
    const monitor = new HeartbeatMonitor();
    cleanup.push(() => monitor.close());
    const server = await healthServer();
    cleanup.push(server.close);
    const poller = new HealthPoller({
      monitor,
      intervalMs: 20,
      timeoutMs: 5000,
      isHealthy: async (response) =>
        ((await response.json()) as { ok: boolean }).ok && response.headers.get('content-type')?.includes('json') === true,
    });
    cleanup.push(() => poller.close());
    expect(poller.add({ id: 'api-1', url: new URL('/healthz', server.url) })).toBe(true);
    expect(poller.add({ id: 'api-1', url: `${server.url}/healthz` })).toBe(false);
    const probe = await next<ProbeEvent>((l) => poller.on('probe', l));
    expect(probe).toMatchObject({ id: 'api-1', ok: true, status: 200, error: undefined });
    expect(await poller.remove('api-1')).toBe(true);
    expect(await poller.remove('api-1')).toBe(false);
    expect(monitor.nodes()).toEqual([]);
    expect(() => poller.add({ id: 'x', url: 'not a url' })).toThrow('target.url must be an absolute URL');
  });
});
