/**
 * Starts a local Redis topology for trying the reference system in Redis mode: a
 * primary, two replicas and three Sentinels on free loopback ports, in a temporary
 * directory. Prints the environment to run the system against it and keeps running
 * until Ctrl-C, which stops every process.
 *
 *   npx node --conditions=@ballast/source scripts/redis-topology.ts           # run until Ctrl-C
 *   npx node --conditions=@ballast/source scripts/redis-topology.ts --check   # start, enqueue a job through Sentinel, stop
 *   npx node --conditions=@ballast/source scripts/redis-topology.ts --appendfsync=always   # fsync before every answer
 *
 * Every data server writes an append-only file (`appendfsync everysec` unless told
 * otherwise: `always`, `everysec`, `no`) and refuses writes while it hears from no
 * replica within 5 s (`min-replicas-to-write 1`, `min-replicas-max-lag 5`).
 *
 * Then, in another terminal, with the printed variables exported: `npm start`.
 * To watch a failover: `kill -9 <primary pid>` (a crash) or `kill -STOP <primary pid>` (a hang;
 * `kill -CONT` resumes it, and it rejoins as a replica).
 */
import { RedisQueue } from '@ballast/app-queue';
import { type RedisPersistence, startRedisTopology } from '@ballast/test/redis';

const check = process.argv.includes('--check');
const fsyncArg = process.argv.find((a) => a.startsWith('--appendfsync='))?.slice('--appendfsync='.length) ?? 'everysec';
if (!['always', 'everysec', 'no'].includes(fsyncArg)) {
  console.error(`--appendfsync must be always, everysec or no, got ${JSON.stringify(fsyncArg)}`);
  process.exit(2);
}
const topology = await startRedisTopology({
  replicas: 2,
  sentinels: 3,
  masterName: 'ballast',
  downAfterMs: 2000,
  failoverTimeoutMs: 10_000,
  persistence: fsyncArg as RedisPersistence,
  minReplicasToWrite: 1,
  minReplicasMaxLagS: 5,
});
const sentinels = topology.sentinelAddresses.map((s) => `${s.host}:${s.port}`).join(',');
console.log(`Redis topology running (append-only file, appendfsync ${fsyncArg}; min-replicas-to-write 1, max lag 5 s):`);
console.log(`  primary    ${topology.primary.url}   (pid ${topology.primary.pid})`);
for (const r of topology.replicas) console.log(`  replica    ${r.url}   (pid ${r.pid})`);
for (const s of topology.sentinels) console.log(`  sentinel   ${s.url}   (pid ${s.pid})`);
console.log(`
Run the system against it (in another terminal):
  export BALLAST_REDIS_SENTINELS=${sentinels}
  export BALLAST_REDIS_MASTER=${topology.masterName}
  npm start
Or run the services as separate processes with the same variables:
  npx node --conditions=@ballast/source apps/worker/src/main.ts
  BALLAST_API_PORT=8081 npx node --conditions=@ballast/source apps/api/src/main.ts
  BALLAST_GATEWAY_UPSTREAMS=http://127.0.0.1:8081 npx node --conditions=@ballast/source apps/gateway/src/main.ts
To watch a failover: kill -9 ${topology.primary.pid} (a crash), or kill -STOP ${topology.primary.pid} (a hang; kill -CONT to resume).`);

if (check) {
  const queue = new RedisQueue({ connection: { sentinels: topology.sentinelAddresses, name: topology.masterName }, minReplicas: 1 });
  const id = await queue.enqueue({ data: Buffer.from('check'), params: {}, deadlineAt: Date.now() + 10_000 });
  const consumer = queue.consumer('check');
  const lease = await consumer.next();
  await lease.complete(Buffer.from('ok'), {});
  const result = await queue.wait(id);
  console.log(`\nCheck: job ${id} enqueued through Sentinel, replicated, completed: ${result.status}`);
  await consumer.close();
  await queue.close();
  await topology.stop();
} else {
  console.log('\nCtrl-C to stop every Redis process.');
  const stop = async (): Promise<void> => {
    await topology.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
