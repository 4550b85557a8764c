/**
 * A reference system run in a child process for a benchmark, so that its CPU time is its
 * own: the child calls {@link serveOverIpc} once its system listens; the benchmark
 * {@link forkSystem}s it, {@link saturate}s it in rounds (reading its CPU time around
 * each), and stops it.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A system running in a child process. */
export interface SystemProcess {
  url: string;
  /** CPU time the child has used so far (user + system), ms. */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

type Message = { type: string; url?: string; ms?: number };

/** Starts `script` (a server that calls {@link serveOverIpc}) with Node `flags` and `env`; resolves once it listens. */
export async function forkSystem(script: URL, flags: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<SystemProcess> {
  const child = fork(fileURLToPath(script), [], {
    execArgv: ['--conditions=@ballast/source', ...flags],
    env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting: Array<(m: Message) => void> = [];
  child.on('message', (m: Message) => waiting.shift()?.(m));
  const next = (): Promise<Message> => new Promise((resolve) => waiting.push(resolve));
  const { url = '' } = await next();
  return {
    url,
    async cpuMs() {
      const reply = next();
      child.send({ type: 'cpu' });
      return (await reply).ms ?? 0;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'stop' });
      await exited;
    },
  };
}

/**
 * The child's side: announces `url`, answers `{ type: 'cpu' }` with its CPU time, and on
 * `{ type: 'stop' }` runs `stop` and exits.
 */
export function serveOverIpc(url: string, stop: () => Promise<void>): void {
  process.on('message', async (message: { type: string }) => {
    if (message.type === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send?.({ type: 'cpu', ms: (user + system) / 1000 });
    }
    if (message.type === 'stop') {
      await stop();
      process.exit(0);
    }
  });
  process.send?.({ type: 'ready', url });
}

/** What one closed-loop round measured: requests answered 200, per second and per CPU-second of the process measured. */
export interface Throughput {
  perSecond: number;
  perCpuSecond: number;
  /** Requests answered 200. */
  ok: number;
  /** Requests answered with any other status. */
  other: number;
}

/**
 * One resize request of the system benchmarks: `POST <url>/v1/resize?<query>` with `image`
 * as a JPEG body; resolves with the status once the body is read.
 */
export function resizeSender(url: string, image: Uint8Array, query: string): (signal?: AbortSignal) => Promise<number> {
  return async (signal) => {
    const res = await fetch(`${url}/v1/resize?${query}`, {
      method: 'POST',
      body: image,
      headers: { 'content-type': 'image/jpeg' },
      signal,
    });
    await res.arrayBuffer();
    return res.status;
  };
}

/**
 * Saturates `server` for `roundMs` with a closed loop of `clients` clients, each sending
 * `send()` again as soon as it is answered: the requests answered 200 per second and per
 * CPU-second of the server's process.
 */
export async function saturate(server: SystemProcess, send: () => Promise<number>, clients: number, roundMs: number): Promise<Throughput> {
  let ok = 0;
  let other = 0;
  const start = performance.now();
  const cpu0 = await server.cpuMs();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() - start < roundMs) {
        if ((await send()) === 200) ok++;
        else other++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const cpuSeconds = ((await server.cpuMs()) - cpu0) / 1000;
  return { perSecond: ok / seconds, perCpuSecond: ok / cpuSeconds, ok, other };
}
