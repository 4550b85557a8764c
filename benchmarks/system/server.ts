/**
 * The system under benchmark, in its own process: gateway, three API servers and one
 * worker (concurrency = cores) on the in-process queue. Talks to the benchmark over
 * IPC: sends `{ type: 'ready', url }`, answers `{ type: 'cpu' }` with the CPU time it
 * has used, and stops on `{ type: 'stop' }`.
 */
import { silentLogger } from '@ballast/app-shared';
import { startSystem } from '@ballast/app-system';
import { serveOverIpc } from '../lib/system-process.ts';

// The load generator stands for many clients from one loopback address: no per-address rate limit.
const system = await startSystem({ apis: 3, workers: 1, logger: silentLogger(), gateway: { rateLimit: false } });
serveOverIpc(system.url, () => system.close());
