import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { hookPlugin } from './hook-plugin.ts';
import { errorAnswer } from './http.ts';
import { clientGoneSignal, onResponseEnd, sendErrorAnswer } from './node-response.ts';

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** A real server on loopback whose handler is `handle`; returns a client that can give up. */
async function serve(handle: (res: ServerResponse) => void) {
  const server = createServer((_req, res) => handle(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  const { port } = server.address() as AddressInfo;
  return () => {
    const req = request({ host: '127.0.0.1', port, agent: false });
    const response = new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
    });
    response.catch(() => {});
    req.end();
    return { response, abandon: () => req.destroy() };
  };
}

describe('onResponseEnd and clientGoneSignal', () => {
  it('report a response sent whole, once, and leave no listener behind', async () => {
    const seen: boolean[] = [];
    let signal: AbortSignal | undefined;
    let res!: ServerResponse;
    let before = 0;
    const listeners = (r: ServerResponse) => r.listenerCount('finish') + r.listenerCount('close');
    const client = await serve((r) => {
      res = r;
      before = listeners(r);
      signal = clientGoneSignal(r);
      onResponseEnd(r, (finished) => seen.push(finished));
      r.end('ok');
    });
    expect((await client().response).body).toBe('ok');
    await vi.waitFor(() => expect(seen).toEqual([true]), { timeout: 15_000 });
    expect(signal?.aborted).toBe(false);
    await vi.waitFor(() => expect(listeners(res)).toBe(before), { timeout: 15_000 });
    onResponseEnd(res, (finished) => seen.push(finished));
    expect(seen).toEqual([true, true]);
  });

  it('report a client that went away before the response was sent', async () => {
    const seen: boolean[] = [];
    let signal: AbortSignal | undefined;
    const client = await serve((r) => {
      signal = clientGoneSignal(r);
      onResponseEnd(r, (finished) => seen.push(finished));
    });
    const open = client();
    await vi.waitFor(() => expect(signal).toBeDefined(), { timeout: 15_000 });
    open.abandon();
    await vi.waitFor(() => expect(seen).toEqual([false]), { timeout: 15_000 });
    expect(signal?.aborted).toBe(true);
  });
});

describe('sendErrorAnswer', () => {
  it('writes the status, headers and JSON body, keeping headers set before, and nothing once the head is sent', async () => {
    const client = await serve((res) => {
      res.setHeader('x-before', 'kept');
      sendErrorAnswer(res, errorAnswer(503, 'ERR_X', 'full', { 'Retry-After': '2' }, { reason: 'limit' }));
      sendErrorAnswer(res, errorAnswer(500, 'ERR_Y', 'twice'));
    });
    const { status, headers, body } = await client().response;
    expect(status).toBe(503);
    expect(headers['retry-after']).toBe('2');
    expect(headers['x-before']).toBe('kept');
    expect(headers['content-type']).toBe('application/json');
    expect(headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(JSON.parse(body)).toEqual({ error: { reason: 'limit', code: 'ERR_X', message: 'full' } });
  });
});

describe('hookPlugin', () => {
  it('is a plugin Fastify does not encapsulate, named after its hook, carrying the hook', () => {
    const hook = async function limit() {};
    const plugin = hookPlugin('@ballast/x', hook);
    const added: unknown[] = [];
    let done = false;
    plugin({ addHook: (name: string, h: unknown) => added.push(name, h) } as never, {}, () => (done = true));
    expect(added).toEqual(['onRequest', hook]);
    expect(done).toBe(true);
    expect(plugin.onRequest).toBe(hook);
    expect(plugin.name).toBe('limit');
    const symbols = plugin as unknown as Record<symbol, unknown>;
    expect(symbols[Symbol.for('skip-override')]).toBe(true);
    expect(symbols[Symbol.for('plugin-meta')]).toEqual({ fastify: '5.x', name: '@ballast/x limit' });
  });
});
