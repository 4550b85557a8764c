/**
 * @ballast/load-balancer: a reverse proxy in front of three upstreams, one of them slow.
 * Peak-EWMA learns each upstream's latency and sends most requests to the fast ones.
 *
 *   npm run example -- load-balancer            (in the Ballast repository)
 *   node load-balancer.ts                       (in your project: npm i @ballast/load-balancer)
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LoadBalancer, peakEwma } from '@ballast/load-balancer';
import { nodeProxy } from '@ballast/load-balancer/node';

/** Starts a server on a free loopback port and returns its URL. */
async function start(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

// Three upstreams: "a" and "b" answer at once, "c" takes 50 ms.
const delays = { a: 0, b: 0, c: 50 };
const upstreams = Object.entries(delays).map(([id, delayMs]) => ({
  id,
  server: createServer((_req, res) => setTimeout(() => res.end(id), delayMs)),
}));
const endpoints = [];
for (const { id, server } of upstreams) endpoints.push({ id, address: await start(server) });

const balancer = new LoadBalancer({ endpoints, strategy: peakEwma() });
const proxy = nodeProxy({ balancer, timeoutMs: 2_000 });
const gateway = createServer(proxy);
const url = await start(gateway);

// 200 requests through the proxy, 10 at a time.
const served: Record<string, number> = { a: 0, b: 0, c: 0 };
for (let round = 0; round < 20; round++) {
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      const res = await fetch(`${url}/photos/1`);
      served[await res.text()]! += 1;
    }),
  );
}
console.log(`requests per upstream: a=${served.a} b=${served.b} c=${served.c} (c is 50 ms slower)`);
console.log(`in flight after the run: ${balancer.stats().inFlight}`);

// Shut down: the proxy's upstream connection pools, the balancer, the servers.
gateway.closeAllConnections();
gateway.close();
await proxy.close();
balancer.close();
for (const { server } of upstreams) {
  server.closeAllConnections();
  server.close();
}
