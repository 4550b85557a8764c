/**
 * The Node proxies users compare with, as round-robin balancers in front of the same
 * backends, with keep-alive upstream connections: `@fastify/http-proxy` (undici, through
 * @fastify/reply-from; the upstream chosen per request by its `getUpstream` option) and
 * `http-proxy` (node:http with a keep-alive agent). Neither retries.
 *
 * Started as a child process; argv[2] is a JSON NodePeerConfig. Reports its port over IPC
 * and exits when the parent disconnects.
 */
import { Agent, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fastifyHttpProxy from '@fastify/http-proxy';
import Fastify from 'fastify';
import httpProxy from 'http-proxy';

export interface NodePeerConfig {
  kind: 'fastify-http-proxy' | 'http-proxy';
  upstreams: string[];
}

const config = JSON.parse(process.argv[2] ?? '{}') as NodePeerConfig;
let next = 0;
const roundRobin = (): string => config.upstreams[next++ % config.upstreams.length]!;

async function start(): Promise<{ port: number; close(): Promise<void> }> {
  if (config.kind === 'fastify-http-proxy') {
    const app = Fastify({ logger: false, keepAliveTimeout: 120_000 });
    await app.register(fastifyHttpProxy, {
      upstream: config.upstreams[0]!,
      replyOptions: { getUpstream: () => roundRobin() },
      undici: { connections: 512, pipelining: 1, keepAliveTimeout: 60_000 },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
  proxy.on('error', (_error, _req, res) => {
    if ('writeHead' in res && !res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  const server = createServer((req, res) => proxy.web(req, res, { target: roundRobin() }));
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const running = await start();
process.send?.({ port: running.port });
process.on('disconnect', () => {
  void running.close().finally(() => process.exit(0));
});
