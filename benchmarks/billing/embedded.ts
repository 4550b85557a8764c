/**
 * Child process of the billing benchmark's CPU-conservation run, embedded mode: the whole
 * system (gateway, API servers, worker) in this process, as `npm start` runs it. Prints its
 * gateway URL, then on "go" (stdin) starts counting, on "stop" prints the CPU its workers
 * metered and the CPU this process used in between.
 */

import { createInterface } from 'node:readline';
import { startSystem } from '@ballast/app-system';
import { processCpuMs } from '@ballast/app-worker';

const system = await startSystem({ apis: 1, workers: 1, workerConcurrency: 2 });
const metered = (): number => system.workers.reduce((n, w) => n + w.stats().cpuMs, 0);
console.log(JSON.stringify({ url: system.url }));
let start = { cpu: 0, metered: 0 };
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'go') start = { cpu: processCpuMs(), metered: metered() };
  if (line === 'stop') {
    console.log(JSON.stringify({ processCpuMs: processCpuMs() - start.cpu, meteredCpuMs: metered() - start.metered }));
    await system.close();
    process.exit(0);
  }
}
