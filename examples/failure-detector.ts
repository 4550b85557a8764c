/**
 * @ballast/failure-detector on Express: two nodes push heartbeats every 100 ms to an
 * Express endpoint; a phi accrual detector per node judges the silences. One node stops:
 * it is suspected within a few missed heartbeats, then declared dead; it comes back and
 * is alive again.
 *
 *   npm run example -- failure-detector         (in the Ballast repository)
 *   node failure-detector.ts                    (in your project: npm i @ballast/failure-detector express)
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { HeartbeatMonitor, httpHeartbeatSender, PhiAccrualDetector } from '@ballast/failure-detector';
import { heartbeatHandler } from '@ballast/failure-detector/express';
import express from 'express';

const started = performance.now();
const at = (): string => `${String(Math.round(performance.now() - started)).padStart(5)} ms`;

// Heartbeats every 100 ms: tolerate a 400 ms pause on top of the usual interval.
const monitor = new HeartbeatMonitor({
  detector: () =>
    new PhiAccrualDetector({ threshold: 8, acceptableHeartbeatPauseMs: 400, minStdDeviationMs: 20, firstHeartbeatEstimateMs: 100 }),
  deadAfterMs: 300,
});
const events: string[] = [];
monitor.on('join', ({ id }) => events.push(`join ${id}`));
monitor.on('suspect', ({ id, silenceMs }) => {
  events.push(`suspect ${id}`);
  console.log(`${at()}  ${id} suspected after ${Math.round(silenceMs)} ms of silence`);
});
monitor.on('dead', ({ id }) => {
  events.push(`dead ${id}`);
  console.log(`${at()}  ${id} dead`);
});
monitor.on('alive', ({ id, from }) => {
  events.push(`alive ${id}`);
  console.log(`${at()}  ${id} alive again (was ${from})`);
});

// The receiving side: anyone can POST heartbeats, but only the nodes we know are accepted.
const app = express();
app.post('/heartbeats', heartbeatHandler(monitor, { accept: (id) => id.startsWith('api-') }));
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/heartbeats`;

const send = (id: string) => httpHeartbeatSender({ url, id, intervalMs: 100, jitter: 0 });
const api1 = send('api-1');
let api2 = send('api-2');
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const until = async (event: string) => {
  while (!events.includes(event)) await wait(20);
};

await wait(1_000);
console.log(`${at()}  both sending: ${monitor.nodes('alive').sort().join(', ')} alive`);
await api2.close(); // api-2 crashes
console.log(`${at()}  api-2 stops sending`);
await until('dead api-2');
api2 = send('api-2'); // and restarts
await until('alive api-2');
const states = monitor
  .nodes()
  .sort()
  .map((id) => `${id}=${monitor.state(id)}`);
console.log(`${at()}  states: ${states.join(', ')}`);
console.log(`events: ${events.join(', ')}`);

await api1.close();
await api2.close();
monitor.close();
server.closeAllConnections();
server.close();
