/**
 * The system under benchmark, in its own process: gateway, three API servers and one
 * worker (concurrency = cores) on the in-process queue. Talks to the benchmark over
 * IPC: sends `{ type: 'ready', url }`, answers `{ type: 'cpu' }` with the CPU time it
 * has used, and stops on `{ type: 'stop' }`.
 */
import { silentLogger } from '@ballast/app-shared';
import { startSystem } from '@ballast/app-system';

const system = await startSystem({ apis: 3, workers: 1, logger: silentLogger() });
const cpuMs = (): number => {
  const { user, system: sys } = process.cpuUsage();
  return (user + sys) / 1000;
};
process.on('message', async (message: { type: string }) => {
  if (message.type === 'cpu') process.send?.({ type: 'cpu', ms: cpuMs() });
  if (message.type === 'stop') {
    await system.close();
    process.exit(0);
  }
});
process.send?.({ type: 'ready', url: system.url, concurrency: system.workers[0]?.concurrency });
