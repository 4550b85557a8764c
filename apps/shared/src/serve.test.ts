import { connect, type Socket } from 'node:net';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { type Listening, listen } from './serve.ts';

const open: Listening[] = [];
afterEach(async () => {
  for (const server of open.splice(0)) await server.close(0);
});

async function serveApp(app: Hono, options: Parameters<typeof listen>[1] = {}): Promise<Listening> {
  const server = await listen(app.fetch, options);
  open.push(server);
  return server;
}

function socketTo(server: Listening): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves with what the server wrote before it closed the connection. */
function closed(socket: Socket): Promise<string> {
  let text = '';
  socket.on('data', (chunk) => {
    text += String(chunk);
  });
  socket.on('error', () => {});
  return new Promise((resolve) => socket.once('close', () => resolve(text)));
}

describe('listen', () => {
  it('lets a request in flight finish on close, then stops accepting', async () => {
    let release: () => void = () => {};
    let entered: () => void = () => {};
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    const app = new Hono();
    app.get('/slow', async (c) => {
      entered();
      await new Promise<void>((r) => {
        release = r;
      });
      return c.text('done');
    });
    const server = await listen(app.fetch);
    const pending = fetch(`${server.url}/slow`);
    await inside;
    const closing = server.close();
    release();
    expect(await (await pending).text()).toBe('done');
    await closing;
    await expect(fetch(`${server.url}/slow`)).rejects.toThrow();
  });

  it('cuts requests still running after the grace period', async () => {
    let entered: () => void = () => {};
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    const app = new Hono();
    app.get('/stuck', () => {
      entered();
      return new Promise<Response>(() => {});
    });
    const server = await listen(app.fetch);
    const pending = fetch(`${server.url}/stuck`).then(
      () => 'answered',
      () => 'cut',
    );
    await inside;
    await server.close(50);
    expect(await pending).toBe('cut');
  });

  it('closes a connection that sends no headers once headersTimeoutMs passes', async () => {
    const server = await serveApp(
      new Hono().get('/', (c) => c.text('ok')),
      { headersTimeoutMs: 300, requestTimeoutMs: 300 },
    );
    const silent = await socketTo(server);
    const partial = await socketTo(server);
    partial.write('GET / HTTP/1.1\r\nHost: x\r\n'); // headers never finished
    const [a, b] = await Promise.all([closed(silent), closed(partial)]);
    expect(a === '' || a.startsWith('HTTP/1.1 408')).toBe(true);
    expect(b).toMatch(/^HTTP\/1\.1 408/);
  });

  it('refuses connections beyond maxConnections', async () => {
    const server = await serveApp(
      new Hono().get('/', (c) => c.text('ok')),
      { maxConnections: 2 },
    );
    const held = [await socketTo(server), await socketTo(server)];
    while ((await connections(server)) < 2) await new Promise((r) => setImmediate(r));
    const third = await socketTo(server);
    third.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await closed(third)).toBe('');
    for (const s of held) s.destroy();
  });

  it('refuses a client’s connections beyond maxConnectionsPerClient, not another client’s', async () => {
    const server = await serveApp(
      new Hono().get('/', (c) => c.text('ok')),
      { maxConnectionsPerClient: 2 },
    );
    const held = [await socketTo(server), await socketTo(server)];
    while ((await connections(server)) < 2) await new Promise((r) => setImmediate(r));
    const third = await socketTo(server);
    third.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await closed(third)).toBe('');
    // Another loopback address is another client.
    const other = await new Promise<Socket>((resolve, reject) => {
      const socket = connect({ port: server.port, host: '127.0.0.1', localAddress: '127.0.0.2' }, () => resolve(socket));
      socket.once('error', reject);
    });
    other.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(await closed(other)).toMatch(/^HTTP\/1\.1 200/);
    for (const s of held) s.destroy();
  });

  it('refuses limits that make no sense, naming the option', async () => {
    await expect(listen(new Hono().fetch, { headersTimeoutMs: 5000, requestTimeoutMs: 1000 })).rejects.toThrow(/requestTimeoutMs/);
    await expect(listen(new Hono().fetch, { maxConnections: 0 })).rejects.toThrow(/maxConnections/);
  });
});

function connections(server: Listening): Promise<number> {
  return new Promise((resolve, reject) => server.server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}
