/**
 * Runs the gateway in front of the API servers named by `BALLAST_GATEWAY_UPSTREAMS`
 * (`http://127.0.0.1:8081,http://127.0.0.1:8082,…`) on `BALLAST_GATEWAY_PORT`
 * (default 8080), with `BALLAST_GATEWAY_STRATEGY` (p2c, round-robin,
 * least-connections, peak-ewma, random; default p2c).
 */

import { InvalidOptionError } from '@ballast/common';
import { serve } from '@hono/node-server';
import { createGateway, type StrategyName } from './gateway.ts';

const raw = process.env.BALLAST_GATEWAY_UPSTREAMS ?? '';
const urls = raw
  .split(',')
  .map((u) => u.trim())
  .filter(Boolean);
if (urls.length === 0) throw new InvalidOptionError('BALLAST_GATEWAY_UPSTREAMS', 'a comma-separated list of API URLs', raw);
const gateway = createGateway({
  upstreams: urls.map((url, i) => ({ id: `api-${i + 1}`, url })),
  strategy: (process.env.BALLAST_GATEWAY_STRATEGY as StrategyName | undefined) ?? 'p2c',
});
const server = serve(
  {
    fetch: gateway.app.fetch,
    port: Number(process.env.BALLAST_GATEWAY_PORT ?? 8080),
    hostname: process.env.BALLAST_GATEWAY_HOST ?? '127.0.0.1',
  },
  (info) => console.log(JSON.stringify({ level: 'info', service: 'gateway', port: info.port, upstreams: urls })),
);
const stop = async (): Promise<void> => {
  server.close();
  await gateway.close();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
