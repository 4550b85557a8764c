/**
 * @ballast/backpressure on Fastify: a rate limit per API key (429 with the IETF RateLimit
 * headers) and a concurrency limit with a bounded queue (503 with Retry-After) in front
 * of a slow route.
 *
 *   npm run example -- backpressure             (in the Ballast repository)
 *   node backpressure.ts                        (in your project: npm i @ballast/backpressure fastify)
 */
import { ConcurrencyLimiter, KeyedRateLimiter } from '@ballast/backpressure';
import { admissionControl, rateLimit } from '@ballast/backpressure/fastify';
import Fastify from 'fastify';

const perKey = new KeyedRateLimiter({ name: 'per-key', limit: 5, windowMs: 60_000 });
const limiter = new ConcurrencyLimiter({ name: 'work', limit: 4, maxQueue: 4, queueTimeoutMs: 5_000 });

// The route holds each request until `finish()`: the demo decides when work completes.
let finish: () => void = () => {};
let finished = new Promise<void>((resolve) => (finish = resolve));

const app = Fastify();
await app.register(rateLimit({ limiter: perKey, key: (request) => String(request.headers['x-api-key'] ?? 'anonymous') }));
await app.register(admissionControl({ limiter }));
app.get('/work', async () => {
  await finished;
  return { done: true };
});
const url = await app.listen({ port: 0, host: '127.0.0.1' });

// 1. One API key sends 7 requests (work finishes at once): 5 are served, 2 answered 429.
finish();
const statuses: number[] = [];
let last: Response | undefined;
for (let i = 0; i < 7; i++) {
  last = await fetch(`${url}/work`, { headers: { 'x-api-key': 'key-1' } });
  statuses.push(last.status);
  await last.arrayBuffer();
}
console.log(`one key, 7 requests: ${statuses.join(' ')}`);
console.log(`RateLimit-Policy: ${last?.headers.get('ratelimit-policy')}`);
console.log(`RateLimit: ${last?.headers.get('ratelimit')}, Retry-After: ${last?.headers.get('retry-after')}`);

// 2. A burst of 20 requests from 20 keys while the work is slow: 4 run, 4 wait in the
// queue, the other 12 are answered 503 at once instead of piling up.
finished = new Promise<void>((resolve) => (finish = resolve));
const burst = Array.from({ length: 20 }, (_, i) => fetch(`${url}/work`, { headers: { 'x-api-key': `burst-${i}` } }));
const shed: Response[] = [];
for (const pending of burst) pending.then((res) => res.status === 503 && shed.push(res));
while (shed.length < 12 || limiter.inflight < 4 || limiter.queued < 4) await new Promise((resolve) => setTimeout(resolve, 10));
console.log(`burst of 20: ${limiter.inflight} running, ${limiter.queued} queued, ${shed.length} shed`);
console.log(`a shed answer: ${shed[0]?.status} Retry-After ${shed[0]?.headers.get('retry-after')} ${await shed[0]?.text()}`);
finish();
const served = (await Promise.all(burst)).filter((res) => res.status === 200).length;
console.log(`served once the work finished: ${served}`);
console.log(`limiter: ${JSON.stringify({ admitted: limiter.stats().admitted, shed: limiter.stats().shed.queueFull })}`);

await app.close();
limiter.close();
perKey.close();
