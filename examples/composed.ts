/**
 * Several packages together: a Hono service whose route calls a flaky upstream through
 * retry ∘ circuit breaker ∘ concurrency limit ∘ timeout, composed with `wrap()`. One
 * signal (the client's) reaches every layer, one `classify` judges each answer for all
 * of them, and each failure the stack cannot hide becomes one clear error answer.
 *
 *   npm run example -- composed                 (in the Ballast repository)
 *   node composed.ts                            (in your project: npm i @ballast/common @ballast/retry
 *                                                @ballast/circuit-breaker @ballast/backpressure hono @hono/node-server)
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConcurrencyLimiter, isShedError } from '@ballast/backpressure';
import { CircuitBreaker, isBrokenCircuitError } from '@ballast/circuit-breaker';
import { errorBody, isTimeoutError, retryAfterSeconds, TimeoutPolicy, wrap } from '@ballast/common';
import { constantBackoff, defaultRetryOn, RetryPolicy } from '@ballast/retry';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

// The upstream: "flaky" answers 503 to one request in three, "slow" hangs on every first
// request for a SKU, "down" always answers 503, "up" always answers.
let mode: 'flaky' | 'slow' | 'down' | 'up' = 'flaky';
let upstreamHits = 0;
const seenSkus = new Set<string>();
const upstream = createServer((req, res) => {
  upstreamHits++;
  if (mode === 'down' || (mode === 'flaky' && upstreamHits % 3 === 0)) return void res.writeHead(503).end();
  if (mode === 'slow' && !seenSkus.has(req.url ?? '')) {
    seenSkus.add(req.url ?? '');
    return; // never answers: the attempt's timeout cuts it off
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ price: 42 }));
});
upstream.listen(0, '127.0.0.1');
await once(upstream, 'listening');
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

// The stack, outermost first. Built once, shared by every request.
const breaker = new CircuitBreaker<Response>({
  name: 'prices',
  timeoutMs: false, // the TimeoutPolicy bounds each attempt
  resetTimeoutMs: 500,
  opossum: { volumeThreshold: 5, errorThresholdPercentage: 50 },
});
const prices = wrap(
  new RetryPolicy<Response>({
    maxAttempts: 3,
    backoff: constantBackoff({ delayMs: 10 }),
    // An open circuit is an answer, not a blip: fail fast rather than wait out its Retry-After.
    retryOn: (o) => (o.ok || !isBrokenCircuitError(o.error)) && defaultRetryOn(o),
  }),
  breaker,
  new ConcurrencyLimiter({ name: 'prices', limit: 20, maxQueue: 0 }),
  new TimeoutPolicy({ timeoutMs: 200 }),
);
breaker.on('open', ({ reason }) => console.log(`  (circuit opened: ${reason})`));

const app = new Hono();
app.get('/price/:sku', async (c) => {
  try {
    const res = await prices.execute(({ signal }) => fetch(`${upstreamUrl}/prices/${c.req.param('sku')}`, { signal }), {
      signal: c.req.raw.signal, // the client leaving cancels every layer
      classify: (o) => (!o.ok || o.value.status >= 500 ? 'failure' : 'success'),
    });
    if (!res.ok) return c.json(errorBody('PRICES_FAILED', `prices answered ${res.status}`), 502);
    return c.json(await res.json());
  } catch (error) {
    if (isBrokenCircuitError(error)) {
      return c.json(errorBody(error.code, error.message), 503, { 'Retry-After': String(retryAfterSeconds(error.retryAfterMs)) });
    }
    if (isShedError(error)) return c.json(errorBody(error.code, error.message), 503);
    if (isTimeoutError(error)) return c.json(errorBody(error.code, error.message), 504);
    throw error;
  }
});
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

/** Sends `n` requests in sequence and counts the statuses. */
async function phase(name: typeof mode, n: number): Promise<void> {
  mode = name;
  const hitsBefore = upstreamHits;
  const statuses: Record<number, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/price/sku-${i}`);
    await res.arrayBuffer();
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
  }
  const summary = Object.entries(statuses)
    .map(([status, count]) => `${count}×${status}`)
    .join(', ');
  console.log(`${name.padEnd(5)}: ${n} requests -> ${summary}; upstream hit ${upstreamHits - hitsBefore} times`);
}

// A process's first fetch loads its HTTP client and connects, which on a busy machine can
// outlast the 200 ms an attempt is given: warm it with one request outside the stack.
mode = 'up';
await (await fetch(`${upstreamUrl}/warm-up`)).arrayBuffer();

await phase('flaky', 12); // every third upstream answer is a 503: the retry hides them
await phase('slow', 4); // every first attempt hangs: the timeout cuts it at 200 ms, the retry succeeds
await phase('down', 10); // the retries fail, the circuit opens, the rest is refused at once
await new Promise((resolve) => setTimeout(resolve, 600)); // the open period ends
await phase('up', 3); // a trial call succeeds and the circuit closes
console.log(`circuit: ${breaker.state}`);

server.close();
upstream.closeAllConnections();
upstream.close();
breaker.dispose();
