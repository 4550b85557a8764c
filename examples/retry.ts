/**
 * @ballast/retry: a fetch that retries a flaky upstream with jittered backoff, honours
 * Retry-After, returns the server's last answer when attempts run out, and spends a
 * retry budget so that an outage never multiplies the load.
 *
 *   npm run example -- retry                    (in the Ballast repository)
 *   node retry.ts                               (in your project: npm i @ballast/retry)
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exponentialBackoff, ratioBudget, retryingFetch } from '@ballast/retry';

// An upstream that fails the first two requests of each path with 503, then answers.
// `/down` always fails; `/busy` asks to come back after 1 s.
const seen = new Map<string, number>();
const server = createServer((req, res) => {
  const n = (seen.get(req.url ?? '') ?? 0) + 1;
  seen.set(req.url ?? '', n);
  if (req.url === '/busy') {
    if (n === 1) res.writeHead(503, { 'retry-after': '1' }).end('busy');
    else res.end(`ok after ${n} attempts`);
  } else if (req.url === '/down' || n <= 2) res.writeHead(503).end('unavailable');
  else res.end(`ok after ${n} attempts`);
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const budget = ratioBudget({ ratio: 0.2, minRetriesPerSec: 10 });
const fetchWithRetries = retryingFetch({
  maxAttempts: 3,
  backoff: exponentialBackoff({ baseMs: 50 }), // 0-50 ms, then 0-100 ms, ...
  timeoutMs: 2_000,
  budget,
});
fetchWithRetries.policy.on('retry', ({ attempt, delayMs }) =>
  console.log(`  attempt ${attempt} failed, retrying in ${Math.round(delayMs)} ms`),
);

console.log('GET /flaky:');
const flaky = await fetchWithRetries(`${url}/flaky`);
console.log(`  -> ${flaky.status} ${await flaky.text()}`);

console.log('GET /busy (503 with Retry-After: 1):');
const started = performance.now();
const busy = await fetchWithRetries(`${url}/busy`);
console.log(`  -> ${busy.status} ${await busy.text()}, waited at least ${(performance.now() - started) >= 1000 ? '1 s' : 'less than 1 s'}`);

console.log('GET /down (always 503):');
const down = await fetchWithRetries(`${url}/down`);
console.log(`  -> ${down.status} ${await down.text()}: the server's last answer, after 3 attempts`);

const { calls, attempts, retries, successes, giveUps } = fetchWithRetries.policy.stats();
console.log(`stats: ${JSON.stringify({ calls, attempts, retries, successes, giveUps })}`);
fetchWithRetries.policy.close();
server.closeAllConnections();
server.close();
