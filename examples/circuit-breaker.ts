/**
 * @ballast/circuit-breaker on Express: a breaker per upstream in front of a flaky
 * dependency. After enough failures the circuit opens and requests are answered 503 with
 * Retry-After at once, without touching the dependency; once it recovers, a trial call
 * closes the circuit again.
 *
 *   npm run example -- circuit-breaker          (in the Ballast repository)
 *   node circuit-breaker.ts                     (in your project: npm i @ballast/circuit-breaker express)
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { BreakerRegistry } from '@ballast/circuit-breaker';
import { circuitBreaker } from '@ballast/circuit-breaker/express';
import express from 'express';

// The dependency: healthy or not, as the demo decides.
let inventoryUp = false;
let inventoryCalls = 0;
async function inventory(sku: string): Promise<{ sku: string; stock: number }> {
  inventoryCalls++;
  if (!inventoryUp) throw new Error('inventory service unavailable');
  return { sku, stock: 7 };
}

// One breaker per upstream: opens when half the calls of the last 10 s failed (at least 3 calls),
// stays open 1 s, then lets one trial call through.
const breakers = new BreakerRegistry({
  breaker: { timeoutMs: 2_000, resetTimeoutMs: 1_000, halfOpenMaxCalls: 1, opossum: { volumeThreshold: 3, errorThresholdPercentage: 50 } },
});
breakers.on('open', ({ key }) => console.log(`circuit "${key}" opened`));
breakers.on('close', ({ key }) => console.log(`circuit "${key}" closed`));

const app = express();
app.get('/stock/:sku', circuitBreaker({ registry: breakers, key: () => 'inventory' }), async (req, res) => {
  res.json(await inventory(String(req.params.sku)));
});
// A thrown error is answered 502 here; any 5xx counts as a failure of the circuit.
app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
  res.status(502).json({ error: { code: 'INVENTORY_DOWN', message: error.message } });
});
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const call = async (): Promise<string> => {
  const res = await fetch(`${url}/stock/A-1`);
  const retryAfter = res.headers.get('retry-after');
  return `${res.status}${retryAfter ? ` (Retry-After ${retryAfter})` : ''}`;
};

console.log('inventory down:');
for (let i = 0; i < 5; i++) console.log(`  GET /stock/A-1 -> ${await call()}`);
console.log(`inventory was called ${inventoryCalls} times for 5 requests`);
console.log(`body while open: ${await (await fetch(`${url}/stock/A-1`)).text()}`);

inventoryUp = true;
await new Promise((resolve) => setTimeout(resolve, 1_100)); // the open period ends
console.log('inventory back:');
for (let i = 0; i < 2; i++) console.log(`  GET /stock/A-1 -> ${await call()}`);
console.log(`state: ${breakers.peek('inventory')?.state}`);

server.closeAllConnections();
server.close();
breakers.close();
