/**
 * `npm run usage:shipper`: ships every usage log under `BALLAST_USAGE_DIR` (one directory
 * per process) to the store at `BALLAST_USAGE_DATABASE`, for workers run with
 * `BALLAST_USAGE_SHIP=external`. New directories are picked up as they appear. One JSON
 * line per batch on stdout. SIGTERM/SIGINT stop it after the batches in flight.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { onShutdown } from '@ballast/app-shared';
import { usageConfig } from '../config.ts';
import { Shipper } from '../shipper.ts';
import { UsageStore } from '../store.ts';
import { configOrExit } from './args.ts';

const config = configOrExit(() => usageConfig());
const store = await UsageStore.open({ database: config.database });
const shippers = new Map<string, Shipper>();
const line = (entry: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), service: 'usage-shipper', ...entry })}\n`);
};

async function scan(): Promise<void> {
  for (const name of await readdir(config.logRoot).catch(() => [] as string[])) {
    const dir = join(config.logRoot, name);
    if (shippers.has(dir)) continue;
    try {
      const shipper = await Shipper.open({ dir, store, intervalMs: config.shipIntervalMs, batchRecords: config.batchRecords });
      shipper.events.on('sending', (e) => line({ msg: 'sending', dir, ...e }));
      shipper.events.on('shipped', (e) => line({ msg: 'shipped', dir, ...e }));
      shipper.events.on('error', (e) => line({ msg: 'error', dir, error: String(e.error), segment: e.segment }));
      shippers.set(dir, shipper.start());
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_BALLAST_USAGE_LOG_LOCKED') line({ msg: 'error', dir, error: String(error) });
    }
  }
}

await scan();
const rescan = setInterval(() => void scan(), 5000);
line({ msg: 'started', root: config.logRoot, logs: shippers.size, store: store.sql.kind });

onShutdown(async () => {
  clearInterval(rescan);
  await Promise.all([...shippers.values()].map((s) => s.close()));
  await store.close();
});
