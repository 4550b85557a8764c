/**
 * The API server of the isolation benchmark, in its own process: identity (in-process
 * feed with two tenants), per-tenant quotas, real resizes. Prints { url, keys } on stdout;
 * answers an IPC `'stats'` message with what this process spent since the previous one
 * (CPU, event-loop delay), so a phase's cost is measured where it is paid.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createApi, identityAuthentication, TenantQuotas } from '@ballast/app-api';
import { generateKey, IdentityClient, InProcessFeed, type KeyEntry, type TenantEntry } from '@ballast/app-identity';
import { InProcessQueue } from '@ballast/app-queue';
import { listen, silentLogger } from '@ballast/app-shared';
import { ResizeWorker } from '@ballast/app-worker';

// Each tenant's concurrent jobs fit the workers' slots together (1 + 1 ≤ 2): what a quota
// guarantees is capacity planned for it, so one tenant's jobs never queue behind another's.
const QUOTAS = {
  tn_noisy: { requestsPerSecond: 5, concurrentJobs: 1, monthlyCpuSeconds: 1 },
  tn_quiet: { requestsPerSecond: 20, concurrentJobs: 1, monthlyCpuSeconds: 1 },
};
const feed = new InProcessFeed();
const keys: Record<string, string> = {};
const changes: Array<TenantEntry | KeyEntry> = [];
let version = 0;
for (const id of ['tn_noisy', 'tn_quiet'] as const) {
  const quota = QUOTAS[id];
  const key = generateKey();
  keys[id] = key.key;
  changes.push({ kind: 'tenant', id, name: id, plan: 'pro', quota, version: ++version });
  changes.push({ kind: 'key', hash: key.hash, keyId: `key_${id}`, tenantId: id, prefix: key.prefix, status: 'active', version: ++version });
}
await feed.publish(changes);
const identity = new IdentityClient({ source: feed });
await identity.start();
const queue = new InProcessQueue({ maxDepth: 1000 });
new ResizeWorker({ queue, concurrency: 2 }).start();
const quotas = new TenantQuotas();
const api = createApi({ queue, identity, quotas, authenticate: identityAuthentication({ identity, quotas }), logger: silentLogger() });
const server = await listen(api.app.fetch);
console.log(JSON.stringify({ url: server.url, keys, quota: QUOTAS.tn_noisy }));
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
let cpu = process.cpuUsage();
let since = performance.now();
let refused = 0;
process.on('message', (message) => {
  if (message !== 'stats') return;
  const used = process.cpuUsage(cpu);
  const ms = performance.now() - since;
  process.send?.({
    cpuMs: (used.user + used.system) / 1000,
    wallMs: ms,
    loopDelayP50Ms: delay.percentile(50) / 1e6,
    loopDelayP99Ms: delay.percentile(99) / 1e6,
    loopDelayMaxMs: delay.max / 1e6,
    refused: quotas.stats().rateLimited - refused,
  });
  refused = quotas.stats().rateLimited;
  cpu = process.cpuUsage();
  since = performance.now();
  delay.reset();
});
process.on('disconnect', () => process.exit(0));
