/**
 * `npm run usage:verify -- [--from <ISO time>] [--to <ISO time>] [--hours <n>]`: checks
 * that every job finished in the range (the Redis queue's completion ledger) is billed
 * exactly once — recorded in the store or the archive, on the billing runs' line items —
 * and prints a table per tenant and hour, then every job id missing or counted twice.
 * Exits 1 on any discrepancy, 2 on bad arguments. Default range: the last hour.
 */
import { queueFromEnv } from '@ballast/app-queue';
import { ColdStorage } from '../archive.ts';
import { usageConfig } from '../config.ts';
import { UsageStore } from '../store.ts';
import { formatReport, verifyUsage } from '../verify.ts';
import { commandArgs, configOrExit, fail } from './args.ts';

const USAGE = 'npm run usage:verify -- [--from <ISO time>] [--to <ISO time>] [--hours <n>]';
const args = commandArgs(USAGE, { from: { type: 'string' }, to: { type: 'string' }, hours: { type: 'string' } });
const time = (name: string, value: string | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) fail(USAGE, `--${name} must be an ISO 8601 time such as 2026-10-03T14:00:00Z, got ${JSON.stringify(value)}`);
  return ms;
};
const hours = args.hours === undefined ? 1 : Number(args.hours);
if (!(hours > 0 && hours <= 24 * 366)) fail(USAGE, `--hours must be a number of hours > 0, got ${JSON.stringify(args.hours)}`);
const toMs = time('to', args.to, Date.now());
const fromMs = time('from', args.from, toMs - hours * 3_600_000);
if (fromMs >= toMs) fail(USAGE, '--from must be before --to');

const queue = queueFromEnv();
if (queue.kind !== 'redis') {
  await queue.close();
  fail(
    USAGE,
    'usage:verify reads the Redis queue’s completion ledger: set BALLAST_REDIS_URL or BALLAST_REDIS_SENTINELS (the embedded queue’s ledger lives inside the npm start process)',
  );
}
const config = configOrExit(() => usageConfig());
const store = await UsageStore.open({ database: config.database });
try {
  const report = await verifyUsage({
    ledger: queue,
    store,
    cold: new ColdStorage(config.coldDir, config.bucket),
    billingDir: config.billingDir,
    fromMs,
    toMs,
  });
  process.stdout.write(formatReport(report));
  if (!report.ok) {
    process.stderr.write(`\nUSAGE INVARIANT VIOLATED: ${report.discrepancies.length} discrepancies (listed above)\n`);
    process.exitCode = 1;
  }
} finally {
  await store.close();
  await queue.close();
}
