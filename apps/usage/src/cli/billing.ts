/**
 * `npm run billing -- --period <YYYY-MM | YYYY-MM-DD> [--keep] [--as-of <ISO time>]`: bills one closed period
 * (see `runBilling`). Prints one JSON line per step on stdout, then the invoices as a
 * table. Safe to re-run, and to kill at any instant: running it again finishes the work
 * with the same output. Configuration: `BALLAST_USAGE_*` (apps/README.md).
 */
import { isBallastError } from '@ballast/common';
import { ColdStorage } from '../archive.ts';
import { runBilling } from '../billing.ts';
import { usageConfig } from '../config.ts';
import { parsePeriod } from '../period.ts';
import { DEFAULT_PRICES, readPriceList } from '../prices.ts';
import { UsageStore } from '../store.ts';
import { commandArgs, configOrExit, fail } from './args.ts';

const USAGE =
  'npm run billing -- --period <YYYY-MM | YYYY-MM-DD> [--keep] [--as-of <ISO time>]\n' +
  '  --keep   leave the billed records in the store (they are archived either way)\n' +
  '  --as-of  decide whether the period is closed as if it were this time (re-billing, tests)';
const args = commandArgs(USAGE, { period: { type: 'string' }, keep: { type: 'boolean' }, 'as-of': { type: 'string' } });
if (args.period === undefined) fail(USAGE, 'missing --period');
const asOf = args['as-of'] === undefined ? undefined : Date.parse(args['as-of']);
if (asOf !== undefined && !Number.isFinite(asOf)) fail(USAGE, `--as-of must be an ISO 8601 time, got ${JSON.stringify(args['as-of'])}`);
try {
  parsePeriod(args.period, '--period');
} catch (error) {
  fail(USAGE, (error as Error).message);
}

const config = configOrExit(() => usageConfig());
const prices = config.pricesPath ? await readPriceList(config.pricesPath) : DEFAULT_PRICES;
const store = await UsageStore.open({ database: config.database });
try {
  const result = await runBilling(args.period, {
    store,
    cold: new ColdStorage(config.coldDir, config.bucket),
    outDir: config.billingDir,
    prices,
    closeAfterMs: config.closeAfterMs,
    purge: args.keep !== true,
    now: asOf === undefined ? undefined : () => asOf,
    onStep: (step) => process.stdout.write(`${JSON.stringify(step)}\n`),
  });
  process.stdout.write(`${JSON.stringify({ step: 'done', ...result.files })}\n\n`);
  const { invoiceTable } = await import('../invoice.ts');
  process.stdout.write(invoiceTable(result.document));
} catch (error) {
  process.stderr.write(`billing ${args.period} failed: ${isBallastError(error) ? `${error.code}: ` : ''}${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await store.close();
}
