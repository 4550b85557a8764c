/**
 * A backend for the live comparison: an HTTP server on 127.0.0.1 that serves
 * `concurrency` requests at once, queues the rest in FIFO order, and holds each for an
 * exponentially distributed time, the same latency profile as the simulation (or, with
 * `meanMs: 0`, answers at once: the backend for measuring a proxy's own cost). Every
 * response names the server (`x-server`) and reports its load (`x-ballast-load`: busy
 * slots averaged over about a second, as in the simulation). `GET /__reset` answers
 * every queued request with 503 so the next run starts from an idle server; `GET /__ping`
 * is answered at once, outside the queue and the load figure.
 *
 * Started by the live harness as a child process; argv[2] is a JSON BackendConfig. It
 * reports its port over IPC and exits when the parent disconnects. Like a real server,
 * it finishes work for a client that has already given up.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exponential, seeded } from '../sim/random.ts';
import { UtilisationMeter } from '../utilisation.ts';

export interface BackendConfig {
  id: string;
  concurrency: number;
  meanMs: number;
  seed: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as BackendConfig;
const random = seeded(config.seed, config.id);
const service = exponential(config.meanMs);
let busy = 0;
const meter = new UtilisationMeter(config.concurrency, performance.now());
const queue: ServerResponse[] = [];

function serve(res: ServerResponse): void {
  busy++;
  meter.set(busy, performance.now());
  setTimeout(() => {
    busy--;
    meter.set(busy, performance.now());
    res.writeHead(200, {
      'content-type': 'text/plain',
      'x-server': config.id,
      'x-ballast-load': meter.read(performance.now()).toFixed(3),
    });
    res.end('ok\n');
    const next = queue.shift();
    if (next) serve(next);
  }, service.sample(random()));
}

const server = createServer((req, res) => {
  req.resume();
  if (req.url === '/__reset') {
    for (const queued of queue.splice(0)) queued.writeHead(503).end();
    res.end(`${busy}\n`);
    return;
  }
  // `/__ping`: answered at once whatever the latency profile, to warm a proxy up (JIT, connections).
  if (config.meanMs === 0 || req.url === '/__ping') {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '3', 'x-server': config.id }).end('ok\n');
    return;
  }
  if (busy < config.concurrency) serve(res);
  else queue.push(res);
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('disconnect', () => {
  server.closeAllConnections();
  server.close();
  process.exit(0);
});
