import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { listen } from '../src/index.ts';

describe('listen', () => {
  it('lets a request in flight finish on close, then stops accepting', async () => {
    const app = new Hono();
    app.get('/slow', async (c) => {
      await new Promise((r) => setTimeout(r, 200));
      return c.text('done');
    });
    const server = await listen(app.fetch);
    const pending = fetch(`${server.url}/slow`);
    await new Promise((r) => setTimeout(r, 50));
    const closed = server.close();
    const res = await pending;
    expect(await res.text()).toBe('done');
    await closed;
    await expect(fetch(`${server.url}/slow`)).rejects.toThrow();
  });

  it('cuts requests still running after the grace period', async () => {
    const app = new Hono();
    app.get('/stuck', () => new Promise<Response>(() => {}));
    const server = await listen(app.fetch);
    const pending = fetch(`${server.url}/stuck`).then(
      () => 'answered',
      () => 'cut',
    );
    await new Promise((r) => setTimeout(r, 50));
    await server.close(100);
    expect(await pending).toBe('cut');
  });
});
