/**
 * Runs the gateway in front of the API servers named by `BALLAST_GATEWAY_UPSTREAMS`
 * (`http://127.0.0.1:8081,http://127.0.0.1:8082,…`): the public listener on
 * `BALLAST_GATEWAY_PORT` (default 8080), the operational listener (`/healthz`,
 * `/readyz`, `/metrics`, `/gateway/stats`) on `BALLAST_GATEWAY_OPS_PORT` (default 9080).
 * Every `BALLAST_*` variable is validated first (see apps/README.md).
 */
import { EDGE_ENV, GATEWAY_ENV, IMAGE_ENV, listen, onShutdown, startService } from '@ballast/app-shared';
import { edgeFromEnv } from './env.ts';
import { createGateway } from './gateway.ts';

const { env, logger } = startService('gateway', { ...GATEWAY_ENV, ...EDGE_ENV, ...IMAGE_ENV });
const urls = env.BALLAST_GATEWAY_UPSTREAMS;
const edge = edgeFromEnv(env);
const gateway = createGateway({
  ...edge.options,
  upstreams: urls.map((url, i) => ({ id: `api-${i + 1}`, url })),
  strategy: env.BALLAST_GATEWAY_STRATEGY,
  inputFormats: env.BALLAST_INPUT_FORMATS,
  logger,
});
const server = await listen(gateway.app.fetch, { ...edge.limits, port: env.BALLAST_GATEWAY_PORT, host: env.BALLAST_GATEWAY_HOST });
const ops = await listen(gateway.ops.fetch, { port: env.BALLAST_GATEWAY_OPS_PORT, host: env.BALLAST_GATEWAY_OPS_HOST });
console.log(JSON.stringify({ level: 'info', service: 'gateway', url: server.url, ops: ops.url, upstreams: urls }));

onShutdown(async () => {
  await server.close();
  await ops.close();
  await gateway.close();
});
