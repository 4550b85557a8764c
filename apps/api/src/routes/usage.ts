import { errorResponse, HttpError } from '@ballast/app-shared';
import {
  DEFAULT_PRICES,
  type Period,
  type PriceList,
  parsePeriod,
  periodOf,
  priceTotals,
  scaledDecimal,
  type UsageStore,
} from '@ballast/app-usage';
import type { Hono } from 'hono';
import type { ApiEnv } from '../options.ts';

/** Options of {@link usageRoutes}. */
export interface UsageRoutesOptions {
  /** The usage batch store. */
  store: Pick<UsageStore, 'tenantUsage'>;
  /** Prices for the estimate. @default DEFAULT_PRICES */
  prices?: PriceList;
  /** Wall clock, epoch ms. @default Date.now */
  now?: () => number;
}

/**
 * `GET /v1/usage[?period=YYYY-MM|YYYY-MM-DD]`: the calling tenant's usage recorded so far
 * in a period (the current UTC month by default) — conversions, failed conversions, CPU
 * seconds, GB in and out — and what it would cost at the price list. The tenant is the
 * authenticated caller's (`c.var.tenant`, set by the API's authentication middleware, which
 * runs first on every `/v1/*` route): no parameter can name another. Records reach the store within
 * seconds of a job finishing; a period's records leave it once billed (see the invoice).
 */
export function usageRoutes(app: Hono<ApiEnv>, options: UsageRoutesOptions): void {
  const prices = options.prices ?? DEFAULT_PRICES;
  const now = options.now ?? Date.now;
  app.get('/v1/usage', async function usage(c) {
    // The tenant is the one the authentication middleware settled on, and nothing else.
    const auth = { tenant: c.var.tenant };
    const period = periodFrom(c.req.queries(), now);
    const to = Math.min(period.endMs, now());
    let totals: Awaited<ReturnType<UsageStore['tenantUsage']>>;
    try {
      totals = await options.store.tenantUsage(auth.tenant, period.startMs, Math.max(period.startMs, to));
    } catch {
      return errorResponse(503, 'ERR_BALLAST_USAGE_UNAVAILABLE', 'the usage store cannot be read now; usage is still being recorded', {
        'retry-after': '5',
      });
    }
    return c.json({
      tenant: auth.tenant,
      period: period.id,
      from: new Date(period.startMs).toISOString(),
      to: new Date(Math.max(period.startMs, to)).toISOString(),
      conversions: totals.conversions,
      failed: totals.failed,
      cpuSeconds: scaledDecimal(totals.cpuUs, 6),
      gbIn: scaledDecimal(totals.bytesIn, 9),
      gbOut: scaledDecimal(totals.bytesOut, 9),
      currency: prices.currency,
      estimatedAmount: priceTotals(totals, prices),
      billedRecords: totals.billed,
    });
  });
}

/** The period a `GET /v1/usage` asks for (the current UTC month by default); 400 for anything else. */
function periodFrom(queries: Record<string, string[]>, now: () => number): Period {
  const unknown = Object.keys(queries).filter((k) => k !== 'period');
  if (unknown.length > 0) {
    throw new HttpError(
      400,
      'ERR_BALLAST_INVALID_OPTION',
      `unknown parameter ${JSON.stringify(unknown[0])}; GET /v1/usage takes only period`,
    );
  }
  const periods = queries.period ?? [];
  if (periods.length > 1) throw new HttpError(400, 'ERR_BALLAST_INVALID_OPTION', 'parameter "period" is given more than once');
  try {
    return periods[0] === undefined ? periodOf(now(), 'month') : parsePeriod(periods[0]);
  } catch (error) {
    throw new HttpError(400, 'ERR_BALLAST_INVALID_OPTION', (error as Error).message);
  }
}
