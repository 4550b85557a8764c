/**
 * Ballast's proxy for the live comparison, on one of its data paths: `node`, the
 * `nodeProxy` handler from @ballast/load-balancer/node on a plain `node:http` server;
 * `net`, `netProxy` from the same module (its own HTTP/1.1 server on `node:net`); or
 * `hono`, a Hono app on @hono/node-server whose only route is `balancedProxy` from
 * @ballast/load-balancer/hono. One strategy per process, default options.
 * Started as a child process; argv[2] is a JSON GatewayConfig. Reports its port over
 * IPC and exits when the parent disconnects.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LoadBalancer } from '@ballast/load-balancer';
import { balancedProxy } from '@ballast/load-balancer/hono';
import { netProxy, nodeProxy } from '@ballast/load-balancer/node';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { BALANCER_OPTIONS } from '../sim/run-sim.ts';
import { strategies } from '../strategies.ts';

export interface GatewayConfig {
  strategy: string;
  path: 'node' | 'net' | 'hono';
  upstreams: Array<{ id: string; address: string }>;
}

const config = JSON.parse(process.argv[2] ?? '{}') as GatewayConfig;
const entry = strategies.find((s) => s.id === config.strategy);
if (!entry) throw new Error(`unknown strategy ${config.strategy}`);

const balancer = new LoadBalancer({ endpoints: config.upstreams, strategy: entry.make(), ...BALANCER_OPTIONS });
// The affinity key only where the strategy reads it (the hash strategies), as a user would configure it.
const keyed = entry.id.startsWith('hash');
let close: () => void;
if (config.path === 'node') {
  const proxy = nodeProxy({ balancer, key: keyed ? (req) => req.headers['x-request-key'] as string | undefined : undefined });
  const server = createServer(proxy);
  server.keepAliveTimeout = 120_000;
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
  close = () => {
    server.close();
    void proxy.close();
  };
} else if (config.path === 'net') {
  const proxy = netProxy({
    balancer,
    key: keyed ? (req) => req.headers['x-request-key'] as string | undefined : undefined,
    clientKeepAliveTimeoutMs: 120_000,
  });
  void proxy.listen(0, '127.0.0.1').then(({ port }) => process.send?.({ port }));
  close = () => void proxy.close();
} else {
  const app = new Hono();
  app.all('*', balancedProxy({ balancer, key: keyed ? (c) => c.req.header('x-request-key') : undefined }));
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => {
    process.send?.({ port: info.port });
  });
  close = () => server.close();
}
process.on('disconnect', () => {
  balancer.close();
  close();
  process.exit(0);
});
