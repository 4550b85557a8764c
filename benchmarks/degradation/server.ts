/**
 * The system under the degradation benchmark, in its own process: gateway, three API
 * servers and one worker (concurrency = cores) on the in-process queue, with the API
 * servers' brownout dimmers on (`brownout`) or off (`shed`: admission control only).
 *
 * IPC with the benchmark: sends `{ type: 'ready', url }`; answers `{ type: 'dimmer' }`
 * with every API server's θ, `{ type: 'cpu' }` with its CPU time, and stops on
 * `{ type: 'stop' }`.
 */
import { silentLogger } from '@ballast/app-shared';
import { startSystem } from '@ballast/app-system';

const mode = process.argv[2] === 'shed' ? 'shed' : 'brownout';
// The load generator stands for many clients from one loopback address: no per-address rate
// limit, and no bound on the jobs one anonymous client holds (the fair share's maxJobsPerClient).
const system = await startSystem({
  apis: 3,
  workers: 1,
  logger: silentLogger(),
  gateway: { rateLimit: false },
  api: { brownout: mode === 'brownout' ? {} : false, fairShare: { maxJobsPerClient: 0 } },
});

process.on('message', async (message: { type: string }) => {
  switch (message.type) {
    case 'dimmer':
      process.send?.({ type: 'dimmer', levels: system.apis.map(({ api }) => api.dimmer?.level ?? 1) });
      break;
    case 'cpu': {
      const { user, system: sys } = process.cpuUsage();
      process.send?.({ type: 'cpu', ms: (user + sys) / 1000 });
      break;
    }
    case 'stop':
      await system.close();
      process.exit(0);
  }
});
process.send?.({ type: 'ready', url: system.url });
