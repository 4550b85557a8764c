/**
 * Ballast's gateway for the live comparison: a Hono app on @hono/node-server whose
 * only route is `balancedProxy` from @ballast/load-balancer/hono, with one strategy.
 * Started as a child process; argv[2] is a JSON GatewayConfig. Reports its port over
 * IPC and exits when the parent disconnects.
 */
import type { AddressInfo } from 'node:net';
import { LoadBalancer } from '@ballast/load-balancer';
import { balancedProxy } from '@ballast/load-balancer/hono';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { BALANCER_OPTIONS } from '../sim/run-sim.ts';
import { strategies } from '../strategies.ts';

export interface GatewayConfig {
  strategy: string;
  upstreams: Array<{ id: string; address: string }>;
}

const config = JSON.parse(process.argv[2] ?? '{}') as GatewayConfig;
const entry = strategies.find((s) => s.id === config.strategy);
if (!entry) throw new Error(`unknown strategy ${config.strategy}`);

const balancer = new LoadBalancer({ endpoints: config.upstreams, strategy: entry.make(), ...BALANCER_OPTIONS });
const app = new Hono();
app.all('*', balancedProxy({ balancer, key: (c) => c.req.header('x-request-key') }));

const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => {
  process.send?.({ port: info.port });
});
process.on('disconnect', () => {
  balancer.close();
  server.close();
  process.exit(0);
});
