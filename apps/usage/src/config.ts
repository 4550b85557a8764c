import { join } from 'node:path';
import { loadEnv, USAGE_ENV } from '@ballast/app-shared';

/** Usage settings of a process, from `BALLAST_USAGE_*` (see apps/README.md). */
export interface UsageConfig {
  /** Root of the local usage logs; each process writes `<logRoot>/<its name>`. */
  logRoot: string;
  /** `postgres://…`, or a PGlite directory. */
  database: string;
  /** `in-process`: the process ships its own log; `external`: a shipper process does. */
  ship: 'in-process' | 'external';
  coldDir: string;
  bucket: string;
  billingDir: string;
  /** Price list file; the built-in list when undefined. */
  pricesPath: string | undefined;
  closeAfterMs: number;
  shipIntervalMs: number;
  batchRecords: number;
}

/**
 * Reads the `BALLAST_USAGE_*` variables.
 * @throws {ConfigError} naming each malformed variable.
 */
export function usageConfig(env: NodeJS.ProcessEnv = process.env): UsageConfig {
  const v = loadEnv(USAGE_ENV, env);
  return {
    logRoot: v.BALLAST_USAGE_DIR as string,
    database: v.BALLAST_USAGE_DATABASE as string,
    ship: v.BALLAST_USAGE_SHIP as 'in-process' | 'external',
    coldDir: v.BALLAST_USAGE_COLD_DIR as string,
    bucket: v.BALLAST_USAGE_BUCKET as string,
    billingDir: v.BALLAST_USAGE_BILLING_DIR as string,
    pricesPath: v.BALLAST_USAGE_PRICES,
    closeAfterMs: v.BALLAST_USAGE_CLOSE_AFTER_MS as number,
    shipIntervalMs: v.BALLAST_USAGE_SHIP_INTERVAL_MS as number,
    batchRecords: v.BALLAST_USAGE_BATCH_RECORDS as number,
  };
}

/** The log directory of the process named `name` (a worker's name, or the embedded system's). */
export function logDirFor(config: Pick<UsageConfig, 'logRoot'>, name: string): string {
  if (!/^[\w.-]{1,128}$/.test(name) || name === '.' || name === '..') {
    throw new TypeError(`a usage log is named after its process: letters, digits, ".", "_" or "-", got ${JSON.stringify(name)}`);
  }
  return join(config.logRoot, name);
}
