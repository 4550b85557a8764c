/**
 * The Express and Fastify heartbeat endpoints against real Express 5 and Fastify 5 servers
 * on loopback: the same cases for both, through real HTTP requests.
 */

import { once } from 'node:events';
import { connect } from 'node:net';
import { type ClientResponse, eventually, type Listening, listen, open, send } from '@ballast/test/http';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import * as onExpress from './express.ts';
import * as onFastify from './fastify.ts';
import { httpHeartbeatSender } from './http.ts';
import { HeartbeatMonitor } from './monitor.ts';
import { MALFORMED_HEARTBEATS } from './testing/malformed.ts';

type Framework = 'express' | 'fastify';
type Options = onExpress.HeartbeatHandlerOptions & onFastify.HeartbeatHandlerOptions;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A server with `POST /heartbeats`, its monitor, and a `post()` that sends JSON by default. */
async function serve(framework: Framework, options: Options = {}, jsonParser = false) {
  const monitor = new HeartbeatMonitor();
  let listening: Listening;
  if (framework === 'express') {
    const app = express();
    if (jsonParser) app.use(express.json());
    app.post('/heartbeats', onExpress.heartbeatHandler(monitor, options));
    app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ handlerSaw: error.message });
    });
    listening = await listen(app);
  } else {
    const app = Fastify();
    app.post('/heartbeats', onFastify.heartbeatHandler(monitor, options));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    listening = { url: `http://127.0.0.1:${port}`, port, server: app.server, close: () => app.close() };
  }
  cleanups.push(
    () => monitor.close(),
    () => listening.close(),
  );
  const post = (body: string, headers: Record<string, string> = {}): Promise<ClientResponse> =>
    send(`${listening.url}/heartbeats`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  return { monitor, post, url: listening.url, server: listening.server };
}

describe.each(['express', 'fastify'] as const)('%s heartbeatHandler (real server)', (framework) => {
  it('records a heartbeat and answers 204', async () => {
    const { monitor, post } = await serve(framework);
    const response = await post(JSON.stringify({ id: 'api-1', seq: 3 }));
    expect(response.status).toBe(204);
    expect(response.body).toBe('');
    expect(monitor.nodes()).toEqual(['api-1']);
    await post(JSON.stringify({ id: 'api-1', seq: 4 }));
    expect(monitor.stats().nodes[0]?.heartbeats).toBe(2);
  });

  it('receives what httpHeartbeatSender sends', async () => {
    const { monitor, url } = await serve(framework);
    const sender = httpHeartbeatSender({ url: `${url}/heartbeats`, id: 'api-7', intervalMs: 60_000 });
    cleanups.push(() => sender.close());
    await eventually(() => expect(monitor.nodes()).toEqual(['api-7']));
    // The sender counts its heartbeat once it has read the answer: a moment after the monitor saw it.
    await eventually(() => expect(sender.stats()).toMatchObject({ sent: 1, failed: 0 }));
  });

  it.each(MALFORMED_HEARTBEATS)('answers 400 to %s', async (_, body) => {
    const { monitor, post } = await serve(framework);
    const response = await post(body);
    expect(response.status).toBe(400);
    expect(response.json()).toEqual({
      error: { code: 'ERR_BALLAST_HEARTBEAT_MALFORMED', message: expect.stringContaining('expected a JSON body') },
    });
    expect(monitor.nodes()).toEqual([]);
  });

  it('reads a JSON body whatever its content type (Express, as Hono), or JSON and text only (Fastify: 400 otherwise)', async () => {
    const { monitor, post } = await serve(framework);
    expect((await post('{"id":"t"}', { 'content-type': 'text/plain' })).status).toBe(204);
    const response = await post('{"id":"a"}', { 'content-type': 'application/octet-stream' });
    if (framework === 'express') {
      expect(response.status).toBe(204);
      expect(monitor.nodes()).toEqual(['t', 'a']);
    } else {
      expect(response.status).toBe(400);
      expect(response.json()).toMatchObject({ error: { code: 'ERR_BALLAST_HEARTBEAT_MALFORMED' } });
      expect(monitor.nodes()).toEqual(['t']);
    }
  });

  it('answers 413 to a body over maxBodyBytes, with a length or chunked, without recording it', async () => {
    const { monitor, post } = await serve(framework, { maxBodyBytes: 64 });
    const big = JSON.stringify({ id: 'a', pad: 'x'.repeat(100) });
    for (const headers of [{}, { 'transfer-encoding': 'chunked' }] as Record<string, string>[]) {
      const response = await post(big, headers);
      expect(response.status).toBe(413);
      expect(response.json()).toEqual({ error: { code: 'ERR_BALLAST_HEARTBEAT_TOO_LARGE', message: 'heartbeat body too large' } });
    }
    expect(monitor.nodes()).toEqual([]);
    expect((await post(JSON.stringify({ id: 'a' }))).status).toBe(204);
  });

  it('stops reading a huge upload at maxBodyBytes and answers 413 while the client is still sending', async () => {
    const { monitor, url } = await serve(framework, { maxBodyBytes: 1024 });
    const upload = open(`${url}/heartbeats`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: `{"id":"a","pad":"${'x'.repeat(8 * 1024 * 1024)}"}`,
    });
    const response = await upload.response.catch((error: NodeJS.ErrnoException) => error);
    // The server answers 413 and closes the connection; a client still writing may see the reset first.
    if (response instanceof Error) expect(['ECONNRESET', 'EPIPE']).toContain(response.code);
    else expect(response.status).toBe(413);
    expect(monitor.nodes()).toEqual([]);
  });

  it('records nothing from a client that breaks off mid-upload, and keeps serving others', async () => {
    const { monitor, post, url, server } = await serve(framework);
    const received = once(server, 'request');
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write('POST /heartbeats HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"id":"half');
    await received; // the server has the head; part of the body is on its way
    socket.destroy();
    expect((await post('{"id":"whole"}')).status).toBe(204);
    expect(monitor.nodes()).toEqual(['whole']);
  });

  it('answers 403 when accept refuses, and accept sees the request', async () => {
    const { monitor, post } = await serve(framework, {
      accept: (id, request) => id.startsWith('api-') && request.headers.authorization === 'Bearer s3cret',
    });
    const refused = await post('{"id":"api-1"}');
    expect(refused.status).toBe(403);
    expect(refused.json()).toEqual({ error: { code: 'ERR_BALLAST_HEARTBEAT_REFUSED', message: 'heartbeat refused' } });
    expect((await post('{"id":"evil"}', { authorization: 'Bearer s3cret' })).status).toBe(403);
    expect((await post('{"id":"api-1"}', { authorization: 'Bearer s3cret' })).status).toBe(204);
    expect(monitor.nodes()).toEqual(['api-1']);
  });

  it('answers 500 when accept throws, recording nothing', async () => {
    const { monitor, post } = await serve(framework, {
      accept: async () => {
        throw new Error('token store down');
      },
    });
    expect((await post('{"id":"api-1"}')).status).toBe(500);
    expect(monitor.nodes()).toEqual([]);
  });

  it('rejects invalid options, naming the option', () => {
    const adapter = framework === 'express' ? onExpress : onFastify;
    for (const options of [{ maxBodyBytes: 0 }, { accept: true }]) {
      expect(() => adapter.heartbeatHandler({ heartbeat: () => undefined }, options as never)).toThrow(
        expect.objectContaining({ code: 'ERR_BALLAST_INVALID_OPTION' }),
      );
    }
  });
});

describe('Express heartbeatHandler', () => {
  it('takes the body a parser mounted before it read', async () => {
    const { monitor, post } = await serve('express', {}, true);
    expect((await post('{"id":"api-2"}')).status).toBe(204);
    expect((await post('{"seq":1}')).status).toBe(400);
    expect(monitor.nodes()).toEqual(['api-2']);
  });

  it('is a named function; the Fastify route handler too', () => {
    expect(onExpress.heartbeatHandler(new HeartbeatMonitor()).name).toBe('heartbeatHandler');
    const route = onFastify.heartbeatHandler(new HeartbeatMonitor(), { maxBodyBytes: 100 });
    expect(route.handler.name).toBe('heartbeatHandler');
    expect(route.bodyLimit).toBe(100);
  });
});
