import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { heartbeatHandler } from './hono.ts';
import { HeartbeatMonitor } from './monitor.ts';
import { MALFORMED_HEARTBEATS } from './testing/malformed.ts';

describe('heartbeatHandler', () => {
  const monitors: HeartbeatMonitor[] = [];
  afterEach(() => {
    for (const monitor of monitors.splice(0)) monitor.close();
  });

  function setup(options?: Parameters<typeof heartbeatHandler>[1]): { app: Hono; monitor: HeartbeatMonitor } {
    const monitor = new HeartbeatMonitor();
    monitors.push(monitor);
    const app = new Hono();
    app.post('/heartbeats', heartbeatHandler(monitor, options));
    return { app, monitor };
  }

  const post = (app: Hono, body: string, headers: Record<string, string> = {}): Promise<Response> =>
    Promise.resolve(app.request('/heartbeats', { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } }));

  it('records a heartbeat and answers 204', async () => {
    const { app, monitor } = setup();
    const response = await post(app, JSON.stringify({ id: 'api-1', seq: 3 }));
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');
    expect(monitor.nodes()).toEqual(['api-1']);
    await post(app, JSON.stringify({ id: 'api-1', seq: 4 }));
    expect(monitor.stats().nodes[0]?.heartbeats).toBe(2);
  });

  it.each(MALFORMED_HEARTBEATS)('answers 400 to %s', async (_, body) => {
    const { app, monitor } = setup();
    const response = await post(app, body);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: { code: 'ERR_BALLAST_HEARTBEAT_MALFORMED', message: expect.stringContaining('expected a JSON body') },
    });
    expect(monitor.nodes()).toEqual([]);
  });

  it('answers 413 to a body over maxBodyBytes', async () => {
    const { app, monitor } = setup({ maxBodyBytes: 64 });
    const response = await post(app, JSON.stringify({ id: 'a', pad: 'x'.repeat(100) }));
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: { code: 'ERR_BALLAST_HEARTBEAT_TOO_LARGE', message: 'heartbeat body too large' } });
    expect(monitor.nodes()).toEqual([]);
  });

  it('answers 403 when accept refuses, and sees the request', async () => {
    const { app, monitor } = setup({ accept: (id, c) => id.startsWith('api-') && c.req.header('authorization') === 'Bearer s3cret' });
    const refused = await post(app, '{"id":"api-1"}');
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: { code: 'ERR_BALLAST_HEARTBEAT_REFUSED', message: 'heartbeat refused' } });
    expect((await post(app, '{"id":"evil"}', { authorization: 'Bearer s3cret' })).status).toBe(403);
    expect((await post(app, '{"id":"api-1"}', { authorization: 'Bearer s3cret' })).status).toBe(204);
    expect(monitor.nodes()).toEqual(['api-1']);
  });

  it('is a named function, for readable stack traces', () => {
    expect(heartbeatHandler(new HeartbeatMonitor()).name).toBe('heartbeatHandler');
  });

  it('rejects invalid options', () => {
    for (const options of [{ maxBodyBytes: 0 }, { accept: true }]) {
      expect(() => heartbeatHandler({ heartbeat: () => undefined }, options as never)).toThrow(
        expect.objectContaining({ code: 'ERR_BALLAST_INVALID_OPTION' }),
      );
    }
  });
});
