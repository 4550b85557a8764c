/**
 * The overload experiment: one server process per configuration, driven open-loop.
 */
import { fork } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { Histogram } from '@ballast/common';
import { type OpenLoopResult, openLoop } from '../lib/open-loop.ts';

export interface ServerStats {
  heapMaxMb: number;
  backlogMax: number;
  limiter: { limit: number; admitted: number; shed: Record<string, number> };
  limitMedian: number;
  limitMax: number;
  /** Time inside the server per status, ms. */
  inServer: Record<string, { p50: number; p99: number }>;
}

export interface OverloadRun {
  label: string;
  ratePerSec: number;
  result: OpenLoopResult;
  /** p99 of 200 answers per `windowMs` slice of the run (by send time), ms. */
  p99ByWindow: number[];
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
    const start = performance.now();
    const result = await openLoop(
      async (_i, signal) => {
        const sentAt = performance.now();
        const response = await get('/work', signal);
        if (response.status === 200) {
          const slot = Math.floor((sentAt - start) / windowMs);
          (windows[slot] ??= new Histogram()).record(performance.now() - sentAt);
        }
        return { status: response.status };
      },
      { ratePerSec, durationMs, warmupMs: Math.min(2000, durationMs / 5) },
    );
    const stats = JSON.parse((await get('/stats')).body) as ServerStats;
    agent.destroy();
    return { label, ratePerSec, result, p99ByWindow: Array.from(windows, (h) => h?.percentile(99) ?? Number.NaN), server: stats };
  } finally {
    await server.stop();
  }
}
