/**
 * `npm start`: the reference image-resize system on this machine, in one process —
 * the gateway, three API servers and the resize workers — on the embedded in-process
 * queue, or on Redis when `BALLAST_REDIS_SENTINELS` / `BALLAST_REDIS_URL` is set
 * (see apps/README.md). Prints where to send requests and runs until Ctrl-C.
 *
 *   npm start                      # serve on http://127.0.0.1:8080 (BALLAST_PORT to change)
 *   npm start -- --burst           # also send a burst of real resize requests, print percentiles, exit
 *   npm start -- --burst=500       # a longer burst
 */

import { spawn } from 'node:child_process';
import { identityAuthentication } from '@ballast/app-api';
import { edgeFromEnv } from '@ballast/app-gateway';
import { queueFromEnv } from '@ballast/app-queue';
import { EDGE_ENV, IDENTITY_ENV, IMAGE_ENV, QUEUE_ENV, START_ENV, startService, USAGE_ENV } from '@ballast/app-shared';
import { type RunningSystem, startIdentity, startSystem } from '@ballast/app-system';
import { logDirFor, openRecorder, type UsageStore, usageConfig } from '@ballast/app-usage';
import { sampleJpeg } from '@ballast/app-worker';
import { Histogram } from '@ballast/common';

// The services churn through request objects; with Node's small initial heap that runs a
// full GC several times a second (see apps/README.md, Benchmarks). Run with a larger
// initial old space: re-launch this script once with the flag.
const HEAP_FLAG = '--initial-old-space-size=128';
// Who started this process, read before the (seconds-long) start: a launcher that dies
// during it must still stop the system once it is up.
const LAUNCHED_BY = process.ppid;
// Every BALLAST_* variable is checked before anything starts: a typo stops here, naming it.
const { env, logger } = startService('npm start', { ...QUEUE_ENV, ...IMAGE_ENV, ...EDGE_ENV, ...START_ENV, ...USAGE_ENV, ...IDENTITY_ENV });
if (!process.execArgv.includes(HEAP_FLAG) && !env.BALLAST_NO_RELAUNCH) {
  const child = spawn(process.execPath, [...process.execArgv, HEAP_FLAG, ...process.argv.slice(1)], { stdio: 'inherit' });
  // A signal sent to this process alone (kill <pid>) is passed on; Ctrl-C reaches both
  // processes, and the system treats the copy as the same request to stop.
  const forward = (signal: NodeJS.Signals): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  process.on('SIGINT', () => forward('SIGINT'));
  process.on('SIGTERM', () => forward('SIGTERM'));
  onOrphaned(() => forward('SIGTERM'));
  child.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}

/**
 * Calls `stop` once this process loses its parent: `npm start` runs through a shell,
 * and `kill <npm pid>` ends npm and the shell but would leave the system running.
 */
function onOrphaned(stop: () => void): void {
  const parent = LAUNCHED_BY;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    stop();
  }, 500);
  timer.unref();
}

async function main(): Promise<void> {
  const burstArg = process.argv.slice(2).find((a) => a === '--burst' || a.startsWith('--burst='));
  const burst = burstArg === undefined ? 0 : Number(burstArg.split('=')[1] ?? 200);
  if (!(burst >= 0) || !Number.isInteger(burst)) throw new Error(`--burst takes a whole number of requests, got ${burstArg}`);
  const redis = Boolean(env.BALLAST_REDIS_SENTINELS || env.BALLAST_REDIS_URL);

  // Usage: a fsync'd log per process (a second npm start on this machine has its own; a dead
  // one's is shipped by the next start), shipped to the store (PGlite in data/usage/store by
  // default), which opens in the background: records wait in the log meanwhile.
  const usageSettings = usageConfig();
  const recorder = await openRecorder({
    dir: logDirFor(usageSettings, `system-${process.pid}`),
    store: usageSettings.database,
    adoptFrom: usageSettings.logRoot,
  });
  recorder.store.catch((error: unknown) => logger.warn({ err: error }, 'usage store unavailable: usage stays in the local log'));
  // Opening PGlite holds the event loop (seconds when it first creates the database): let it
  // finish before serving, up to 10 s; past that, serve and let it finish meanwhile.
  await Promise.race([recorder.store.catch(() => undefined), new Promise((r) => setTimeout(r, 10_000).unref())]);
  const usageStore = {
    tenantUsage: async (...args: Parameters<UsageStore['tenantUsage']>) => {
      const store = await recorder.store;
      if (!store) throw new Error('no usage store');
      return await store.tenantUsage(...args);
    },
  };
  const gatewayEdge = edgeFromEnv(env);
  const inputFormats = env.BALLAST_INPUT_FORMATS;

  // Identity: every request carries a key; the demo tenant's is printed below.
  const identity = await startIdentity({
    persistent: burst === 0,
    dataDir: env.BALLAST_IDENTITY_DATA_DIR,
    port: env.BALLAST_IDENTITY_PORT,
  });
  const edge = await identity.client();
  const options = {
    apis: 3,
    workers: 1,
    logger,
    queue: redis ? () => queueFromEnv() : undefined,
    api: {
      identity: edge,
      quotas: identity.quotas,
      authenticate: identityAuthentication({ identity: edge, quotas: identity.quotas }),
      inputFormats,
    },
    usage: { record: recorder.append, store: usageStore },
    gateway: { ...gatewayEdge.options, inputFormats },
    gatewayLimits: gatewayEdge.limits,
    worker: { limits: { inputFormats } },
  };
  let system: RunningSystem;
  try {
    system = await startSystem({ ...options, port: burst > 0 ? 0 : env.BALLAST_PORT, opsPort: burst > 0 ? 0 : env.BALLAST_OPS_PORT });
  } catch (error) {
    if ((error as { code?: string }).code !== 'EADDRINUSE') throw error;
    system = await startSystem({ ...options, port: 0, opsPort: 0 });
  }

  const queueKind = system.apis[0]?.queue.kind ?? 'in-process';
  console.log(
    `Ballast reference system is running (queue: ${queueKind}${redis ? `, ${process.env.BALLAST_REDIS_SENTINELS ? 'Sentinel' : 'single Redis'}` : ''}):`,
  );
  console.log(`  gateway   ${system.url}   (${system.gateway.balancer.strategy} over ${system.apis.length} API servers)`);
  console.log(`  ops       ${system.opsUrl}   (/healthz /readyz /metrics /gateway/stats: keep this port private)`);
  console.log(`  dashboard ${system.opsUrl}/dashboard   (live charts; a request's stages: ${system.opsUrl}/trace/<request id>)`);
  const host = (url: string): string => new URL(url).host;
  console.log(
    `  prometheus npm run prometheus -w ops -- --gateway ${host(system.opsUrl)} --api ${system.apis.map((a) => host(a.ops.url)).join(',')}`,
  );
  for (const { name, server, ops } of system.apis) console.log(`  ${name}     ${server.url}   (ops ${ops.url})`);
  console.log(`  workers   ${system.workers.length} × ${system.workers[0]?.concurrency} conversions at once`);
  const demoKey = identity.identity.demo?.key ?? '';
  if (identity.management) {
    console.log(
      `  identity  ${identity.management.url}   (management API; admin token in .ballast/identity.json, or: npm run identity -- --help)`,
    );
  }
  if (identity.dataDir === undefined && burst === 0)
    console.log('            (another npm start holds .ballast/identity: this one keeps its tenants in memory)');
  const closeSystem = system.close.bind(system);
  system = Object.assign(system, {
    close: async () => {
      await closeSystem();
      await identity.close();
    },
  });

  if (burst === 0) {
    console.log(`
Demo tenant's API key (every request needs one):
  export BALLAST_KEY=${demoKey}
Resize an image (sync: the answer is the image):
  curl -sS -X POST -H "authorization: Bearer $BALLAST_KEY" -H 'content-type: image/jpeg' --data-binary @photo.jpg \\
    '${system.url}/v1/resize?width=800&format=webp' -o photo-800.webp
Async: add &mode=async, then GET the "result" path it returns:
  curl -sS -X POST -H "authorization: Bearer $BALLAST_KEY" -H 'content-type: image/jpeg' --data-binary @photo.jpg '${system.url}/v1/resize?width=800&mode=async'
  curl -sS -H "authorization: Bearer $BALLAST_KEY" '${system.url}/v1/jobs/<id>' -o out.jpg
More tenants and keys: npm run identity -- create-tenant acme --plan pro; npm run identity -- issue-key <tenant id>
Parameters: width, height (1–8192), fit (cover|contain|inside|outside|fill), format (jpeg|png|webp|avif),
quality (1–100), effort, animated, keepMetadata, deadlineMs. Operations: ${system.opsUrl}/metrics, ${system.opsUrl}/gateway/stats.
Ctrl-C to stop.`);
    let stopping = 0;
    const stop = async (): Promise<void> => {
      // Ctrl-C delivers the signal twice (to this process and through the launcher): a
      // repeat within a second is the same request; a later one stops at once.
      if (stopping > 0) {
        if (performance.now() - stopping < 1000) return;
        console.log('Stopped without waiting for the jobs in progress.');
        process.exit(1);
      }
      stopping = performance.now();
      console.log('\nStopping: finishing the jobs in progress… (Ctrl-C again to stop at once)');
      try {
        await system.close();
        await recorder.close();
      } finally {
        process.exit(0);
      }
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    onOrphaned(stop);
  } else {
    const image = await sampleJpeg();
    const concurrency = 4;
    console.log(
      `\nSending ${burst} resize requests (${Math.round(image.length / 1024)} KB JPEG → 800 px JPEG), ${concurrency} at a time, through the gateway…`,
    );
    const latency = new Histogram();
    const statuses = new Map<number | string, number>();
    const upstreams = new Map<string, number>();
    let next = 0;
    const started = performance.now();
    const client = async (): Promise<void> => {
      while (next < burst) {
        next++;
        const t0 = performance.now();
        try {
          const res = await fetch(`${system.url}/v1/resize?width=800`, {
            method: 'POST',
            body: image,
            headers: { 'content-type': 'image/jpeg', authorization: `Bearer ${demoKey}` },
          });
          await res.arrayBuffer();
          latency.record(performance.now() - t0);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const upstream = res.headers.get('x-upstream') ?? 'none';
          upstreams.set(upstream, (upstreams.get(upstream) ?? 0) + 1);
        } catch (error) {
          statuses.set(String(error), (statuses.get(String(error)) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, client));
    const seconds = (performance.now() - started) / 1000;
    const s = latency.summary();
    const ms = (v: number): string => `${v.toFixed(1)} ms`;
    console.log(`\n  requests   ${burst} in ${seconds.toFixed(1)} s (${(burst / seconds).toFixed(1)}/s)`);
    console.log(`  statuses   ${[...statuses].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
    console.log(`  upstreams  ${[...upstreams].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
    console.log(`  latency    p50 ${ms(s.p50)}   p90 ${ms(s.p90)}   p99 ${ms(s.p99)}   p99.9 ${ms(s.p999)}   max ${ms(s.max)}`);
    await system.close();
    await recorder.close(); // ships what the burst recorded
  }
}
