/**
 * The overload experiment: one server process per configuration, driven open-loop.
 */
import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Histogram, type HistogramSummary } from '@ballast/common';
import { type OpenLoopResult, openLoop } from '../lib/open-loop.ts';

export interface ServerStats {
  heapMaxMb: number;
  backlogMax: number;
  limiter: { limit: number; admitted: number; shed: Record<string, number> };
  limitMedian: number;
  limitMax: number;
  /** Time inside the server per status, ms. */
  inServer: Record<string, { p50: number; p99: number }>;
  /** p99 of the server's event-loop delay over the run, ms. */
  eventLoopDelayP99Ms: number;
}

export interface OverloadRun {
  label: string;
  ratePerSec: number;
  result: OpenLoopResult;
  /** p99 of 200 answers per `windowMs` slice of the run (by send time), ms. */
  p99ByWindow: number[];
  /**
   * Latency per status measured from the moment the request was actually sent, ms. The main
   * figures count from the *scheduled* send (no coordinated omission), so they also carry the
   * load generator's own lateness on a busy machine; this one leaves that out.
   */
  fromSend: Record<string, HistogramSummary>;
  /** How late the generator sent each request after its scheduled time, ms. */
  generatorLag: HistogramSummary;
  server: ServerStats;
}

interface Server {
  port: number;
  stop(): Promise<void>;
}

async function startServer(env: Record<string, string>): Promise<Server> {
  const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), {
    env: { ...process.env, ...env },
    execArgv: ['--conditions=@ballast/source'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send('stop');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** Runs `ratePerSec` open-loop for `durationMs` against a fresh server started with `env`. */
export async function overloadRun(
  label: string,
  env: Record<string, string>,
  ratePerSec: number,
  durationMs: number,
  windowMs: number,
): Promise<OverloadRun> {
  const server = await startServer(env);
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
    const get = (path: string, signal?: AbortSignal) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: server.port, path, agent, signal }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
    const windows: Histogram[] = [];
    const fromSend = new Map<number, Histogram>();
    const lag = new Histogram();
    const warmupMs = Math.min(2000, durationMs / 5);
    const intervalMs = 1000 / ratePerSec;
    const start = performance.now();
    const result = await openLoop(
      async (i, signal) => {
        const sentAt = performance.now();
        const counted = i * intervalMs >= warmupMs;
        if (counted) lag.record(Math.max(0, sentAt - start - i * intervalMs));
        const response = await get('/work', signal);
        const tookMs = performance.now() - sentAt;
        if (response.status === 200) {
          const slot = Math.floor((sentAt - start) / windowMs);
          (windows[slot] ??= new Histogram()).record(tookMs);
        }
        if (counted) {
          let h = fromSend.get(response.status);
          if (!h) fromSend.set(response.status, (h = new Histogram()));
          h.record(tookMs);
        }
        return { status: response.status };
      },
      { ratePerSec, durationMs, warmupMs },
    );
    const stats = JSON.parse((await get('/stats')).body) as ServerStats;
    agent.destroy();
    return {
      label,
      ratePerSec,
      result,
      p99ByWindow: Array.from(windows, (h) => h?.percentile(99) ?? Number.NaN),
      fromSend: Object.fromEntries([...fromSend].map(([status, h]) => [status, h.summary()])),
      generatorLag: lag.summary(),
      server: stats,
    };
  } finally {
    await server.stop();
  }
}
