import type { EDGE_ENV, EnvValues, ServerLimits } from '@ballast/app-shared';
import type { GatewayOptions } from './options.ts';
import type { ClientRateLimitOptions } from './rate-limit.ts';

/** The gateway options and listener limits the {@link EDGE_ENV} variables set (unset ones keep the defaults). */
export function edgeFromEnv(env: EnvValues<typeof EDGE_ENV>): { options: Partial<GatewayOptions>; limits: ServerLimits } {
  return {
    options: {
      trustedProxies: env.BALLAST_GATEWAY_TRUSTED_PROXIES,
      maxInflight: env.BALLAST_GATEWAY_MAX_INFLIGHT,
      maxPerUpstream: env.BALLAST_GATEWAY_MAX_PER_UPSTREAM,
      holdRefusedMs: env.BALLAST_GATEWAY_HOLD_REFUSED_MS,
      rateLimit: rateLimitFromEnv(env),
      maxBodyBytes: env.BALLAST_GATEWAY_MAX_BODY_BYTES,
      bodyBudgetBytes: env.BALLAST_GATEWAY_BODY_BUDGET_BYTES,
      bodyBudgetPerClientBytes: env.BALLAST_GATEWAY_BODY_BUDGET_PER_CLIENT_BYTES,
      bodyTimeoutMs: env.BALLAST_GATEWAY_BODY_TIMEOUT_MS,
      minBodyBytesPerSec: env.BALLAST_GATEWAY_MIN_BODY_BYTES_PER_SEC,
      upstreamTimeoutMs: env.BALLAST_GATEWAY_UPSTREAM_TIMEOUT_MS,
    },
    limits: {
      headersTimeoutMs: env.BALLAST_GATEWAY_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: env.BALLAST_GATEWAY_REQUEST_TIMEOUT_MS,
      idleTimeoutMs: env.BALLAST_GATEWAY_IDLE_TIMEOUT_MS,
      maxConnections: env.BALLAST_GATEWAY_MAX_CONNECTIONS,
      maxConnectionsPerClient: env.BALLAST_GATEWAY_MAX_CONNECTIONS_PER_CLIENT,
    },
  };
}

/** `BALLAST_GATEWAY_RATE_LIMIT_PER_SEC` (0: off) and `…_BURST`; unset, the defaults. */
function rateLimitFromEnv(env: EnvValues<typeof EDGE_ENV>): ClientRateLimitOptions | false | undefined {
  const perSec = env.BALLAST_GATEWAY_RATE_LIMIT_PER_SEC;
  const burst = env.BALLAST_GATEWAY_RATE_LIMIT_BURST;
  if (perSec === 0) return false;
  if (perSec === undefined && burst === undefined) return undefined;
  return { ...(perSec === undefined ? {} : { perSec }), ...(burst === undefined ? {} : { burst }) };
}
