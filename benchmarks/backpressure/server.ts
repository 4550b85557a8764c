/**
 * The server of the overload experiment, run as a child process so the load generator
 * does not share its event loop. Each request does 20 ms of work on a resource with
 * `SLOTS` slots (a connection pool, a worker pool): capacity C = SLOTS / 20 ms. Work
 * beyond the slots waits in the resource's own unbounded FIFO, as it would in a real
 * pool, which is what makes latency grow without bound under overload.
 *
 * MODE=none: no admission control. MODE=adaptive: Ballast's admission control middleware
 * with an adaptive limit in front of the handler.
 */

import type { Server as HttpServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ConcurrencyLimiter, Gradient2Limit, type LimitAlgorithm, VegasLimit } from '@ballast/backpressure';
import { admissionControl } from '@ballast/backpressure/hono';
import { Histogram } from '@ballast/common';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const SLOTS = Number(process.env.SLOTS ?? 2);
const WORK_MS = Number(process.env.WORK_MS ?? 20);
const MODE = process.env.MODE ?? 'none';
const ALGORITHM = process.env.ALGORITHM ?? 'gradient2';

let free = SLOTS;
const waiting: Array<() => void> = [];
async function work(): Promise<void> {
  if (free > 0) free--;
  else await new Promise<void>((resolve) => waiting.push(resolve));
  await new Promise((resolve) => setTimeout(resolve, WORK_MS));
  const next = waiting.shift();
  if (next) next();
  else free++;
}

// Every algorithm starts from the library's initial limit (20, ten times the capacity here):
// finding the limit is the algorithm's job, not the benchmark's.
function algorithm(): LimitAlgorithm {
  if (ALGORITHM === 'vegas-default') return new VegasLimit();
  if (ALGORITHM === 'vegas') {
    const alpha = Number(process.env.ALPHA ?? 1);
    const beta = Number(process.env.BETA ?? 2);
    const threshold = process.env.THRESHOLD === undefined ? undefined : Number(process.env.THRESHOLD);
    return new VegasLimit({
      alpha: () => alpha,
      beta: () => beta,
      ...(threshold === undefined ? {} : { threshold: () => threshold }),
    });
  }
  return new Gradient2Limit();
}

const limiter = new ConcurrencyLimiter({ limit: algorithm(), maxQueue: 0, retryAfterMs: 1000, name: 'overload' });
// The limit sampled every 100 ms (a time-weighted view), and its peak from every change.
const limits: number[] = [];
let limitPeak = limiter.limit;
limiter.on('limitChanged', ({ to }) => {
  limitPeak = Math.max(limitPeak, to);
});

// How late this process's event loop ran: a request waits that long in the socket before any
// handler (and the "in server" time) starts, so it shows when the machine, not the code, is slow.
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();

let heapMax = 0;
let backlogMax = 0;
const sampler = setInterval(() => {
  heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
  backlogMax = Math.max(backlogMax, waiting.length);
  limits.push(limiter.limit);
}, 100);
sampler.unref();

// Time spent inside this server per answer, by status: separates the server's own decision
// time from the scheduling stalls of a busy machine, which the client-side figures include.
const inServer = new Map<number, Histogram>();
const app = new Hono();
app.use('/work', async (c, next) => {
  const start = performance.now();
  await next();
  let h = inServer.get(c.res.status);
  if (!h) inServer.set(c.res.status, (h = new Histogram()));
  h.record(performance.now() - start);
});
if (MODE === 'adaptive') app.use('/work', admissionControl({ limiter }));
app.get('/work', async (c) => {
  await work();
  return c.text('ok');
});
app.get('/stats', (c) => {
  const sorted = [...limits].sort((a, b) => a - b);
  const body = {
    heapMaxMb: heapMax / 2 ** 20,
    backlogMax,
    limiter: limiter.stats(),
    limitMedian: sorted[Math.floor(sorted.length / 2)] ?? limiter.limit,
    limitMax: limitPeak,
    inServer: Object.fromEntries([...inServer].map(([status, h]) => [status, h.summary()])),
    eventLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
  };
  inServer.clear();
  heapMax = 0;
  backlogMax = 0;
  limits.length = 0;
  loopDelay.reset();
  limitPeak = limiter.limit;
  return c.json(body);
});

const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => process.send?.({ port: info.port }));
// Longer than any run: the generator's keep-alive sockets are never closed under it mid-request.
(server as HttpServer).keepAliveTimeout = 60_000;
process.on('message', (message) => {
  if (message === 'stop') {
    clearInterval(sampler);
    loopDelay.disable();
    limiter.close();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  }
});
