/**
 * `npm run start:distributed`: the reference system's distributed deployment on this
 * machine, every part its own process on free loopback ports — Redis primary, two
 * replicas, three Sentinels, PostgreSQL, the identity management plane, workers with
 * their usage shippers, three API servers and the gateway. Each service is checked
 * healthy before the launcher reports ready, is restarted if it dies (as a process
 * manager would), and is stopped by Ctrl-C / SIGTERM, or when whatever started the
 * launcher dies. Prints what runs where with each pid, and a demo tenant's API key.
 *
 *   npm run start:distributed                       # 3 API servers, 2 workers
 *   npm run start:distributed -- --apis=2 --workers=3
 */
import { launchDistributed } from '@ballast/app-system';

const LAUNCHED_BY = process.ppid;
const arg = (name: string, fallback: number): number => {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    console.error(`--${name} takes a whole number from 1 to 64, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
};
const apis = arg('apis', 3);
const workers = arg('workers', 2);

let stopping = false;
let launched: Awaited<ReturnType<typeof launchDistributed>> | undefined;
const stop = async (why: string): Promise<void> => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${why}: stopping every process…`);
  try {
    await launched?.close();
  } finally {
    process.exit(0);
  }
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
// `npm run` starts this through a shell: `kill <npm pid>` ends those but not this process.
const orphaned = setInterval(() => {
  if (process.ppid !== LAUNCHED_BY) void stop('parent exited');
}, 500);
orphaned.unref();

console.log(`Starting the distributed deployment (${apis} API servers, ${workers} workers)…`);
launched = await launchDistributed({ apis, workers, onProgress: (line) => console.log(`  up: ${line}`) });
if (stopping) await new Promise(() => {}); // a signal arrived during the start: stop() exits

const admin = { authorization: `Bearer ${launched.adminToken}`, 'content-type': 'application/json' };
const tenant = (await (
  await fetch(`${launched.identityUrl}/v1/tenants`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'demo', plan: 'pro' }) })
).json()) as { id: string };
const issued = (await (
  await fetch(`${launched.identityUrl}/v1/tenants/${tenant.id}/keys`, { method: 'POST', headers: admin, body: '{}' })
).json()) as { key: string };

console.log(`
Ballast distributed deployment is running:
${launched.describe()}

Logs: ${launched.dir}/logs/<service>.log
Demo tenant's API key (every request needs one; new keys propagate to the API servers within a second):
  export BALLAST_KEY=${issued.key}
  curl -sS -X POST -H "authorization: Bearer $BALLAST_KEY" -H 'content-type: image/jpeg' --data-binary @photo.jpg \\
    '${launched.url}/v1/resize?width=800&format=webp' -o photo-800.webp
Management API (admin token below): ${launched.identityUrl}
  export BALLAST_IDENTITY_URL=${launched.identityUrl} BALLAST_IDENTITY_ADMIN_TOKEN=${launched.adminToken}
  npm run identity -- create-tenant acme --plan pro
Try a failure: kill -9 <pid> of an API server, a worker or the Redis primary, and watch the system go on.
Ctrl-C to stop.`);
