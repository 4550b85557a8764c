/**
 * `npm start`: a short, real demonstration of Ballast on this machine, with no
 * external service. Three HTTP servers on loopback answer with different latency
 * profiles; a client spreads 300 requests over them and reports the latency
 * percentiles each one delivered, measured with @ballast/common's histogram.
 *
 * The reference image-resize system replaces this demonstration once it exists.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Histogram } from '@ballast/common';

const profiles = [
  { name: 'fast', delayMs: 2 },
  { name: 'steady', delayMs: 5 },
  { name: 'slow', delayMs: 25 },
];

async function listen(delayMs: number): Promise<Server> {
  const server = createServer((_req, res) => {
    setTimeout(() => res.end('ok'), delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const servers = await Promise.all(profiles.map((p) => listen(p.delayMs)));
const urls = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}/`);
console.log('Started three upstream servers on loopback:');
for (const [i, p] of profiles.entries()) console.log(`  ${p.name.padEnd(7)} ${urls[i]}  (answers after ${p.delayMs} ms)`);

const perServer = profiles.map(() => new Histogram());
const overall = new Histogram();
const requests = 300;
let next = 0;
const worker = async (): Promise<void> => {
  while (next < requests) {
    const i = next++ % urls.length;
    const started = performance.now();
    const res = await fetch(urls[i] as string);
    await res.text();
    const ms = performance.now() - started;
    perServer[i]?.record(ms);
    overall.record(ms);
  }
};
await Promise.all(Array.from({ length: 8 }, worker));

const f = (ms: number): string => `${ms.toFixed(1)} ms`.padStart(9);
console.log(`\nSent ${requests} requests round robin, 8 at a time. Latency seen by the client:`);
console.log(`  ${'server'.padEnd(8)}${'count'.padStart(6)}${'p50'.padStart(9)}${'p99'.padStart(9)}${'max'.padStart(9)}`);
for (const [i, h] of perServer.entries()) {
  const s = h.summary();
  console.log(`  ${profiles[i]?.name.padEnd(8)}${String(s.count).padStart(6)}${f(s.p50)}${f(s.p99)}${f(s.max)}`);
}
const s = overall.summary();
console.log(`  ${'all'.padEnd(8)}${String(s.count).padStart(6)}${f(s.p50)}${f(s.p99)}${f(s.max)}`);
console.log('\nThe slow server sets the overall p99: the case latency-aware balancing strategies exist for.');
await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
