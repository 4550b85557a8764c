import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect } from 'vitest';

/** A real HTTP server on a free loopback port. */
export interface Upstream {
  readonly url: string;
  /** Requests received, in order. */
  readonly requests: IncomingMessage[];
  /** Requests whose connection closed before a response was sent. */
  readonly aborted: IncomingMessage[];
  close(): Promise<void>;
}

export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Upstream> {
  const requests: IncomingMessage[] = [];
  const aborted: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req);
    res.on('close', () => {
      if (!res.writableFinished) aborted.push(req);
    });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    aborted,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Answers with what it received, as JSON, tagged with `id`; reports `load`. */
export function echo(id: string, load?: number): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-upstream': id, 'keep-alive': 'timeout=5' };
      if (load !== undefined) headers['x-ballast-load'] = String(load);
      res.writeHead(200, headers);
      res.end(JSON.stringify({ id, method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
    });
  };
}

/** Accepts requests and never answers. */
export function hang(): (req: IncomingMessage, res: ServerResponse) => void {
  return () => {};
}

/** A loopback URL where nothing listens: connections are refused. */
export async function refusingUrl(): Promise<string> {
  const u = await startUpstream(hang());
  await u.close();
  return u.url;
}

/** Cleanups run after each test, last registered first, and an `upstream()` that registers its own. */
export function useCleanup(): { defer(fn: () => Promise<void> | void): void; upstream: typeof startUpstream } {
  const pending: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const fn of pending.splice(0).reverse()) await fn();
  });
  return {
    defer: (fn) => {
      pending.push(fn);
    },
    upstream: async (handler) => {
      const u = await startUpstream(handler);
      pending.push(() => u.close());
      return u;
    },
  };
}

/**
 * Sends a POST with forged forwarding headers through the proxy at `proxyUrl` to one
 * `echo('one', 0.25)` upstream at `upstreamUrl`, and checks what a proxy must do with them:
 * method, path, query, body and end-to-end headers forwarded; the forged `X-Forwarded-For`,
 * `X-Real-IP` and `Forwarded` replaced by what the proxy saw. Returns the response.
 */
export async function expectForgedHeadersReplaced(proxyUrl: string, upstreamUrl: string): Promise<Response> {
  const res = await fetch(`${proxyUrl}/images/1?w=200`, {
    method: 'POST',
    headers: {
      'content-type': 'text/plain',
      'x-request-id': 'r-1',
      'x-forwarded-for': '10.0.0.1',
      'x-real-ip': '10.0.0.1',
      forwarded: 'for=10.0.0.1',
    },
    body: 'pixels',
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('x-upstream')).toBe('one');
  const seen = (await res.clone().json()) as { method: string; url: string; body: string; headers: Record<string, string> };
  expect(seen).toMatchObject({ method: 'POST', url: '/images/1?w=200', body: 'pixels' });
  const proxyHost = new URL(proxyUrl).host;
  expect(seen.headers).toMatchObject({
    'x-request-id': 'r-1',
    'x-forwarded-for': '127.0.0.1',
    forwarded: `for=127.0.0.1;host="${proxyHost}";proto=http`,
    'x-forwarded-host': proxyHost,
    'x-forwarded-proto': 'http',
    host: new URL(upstreamUrl).host,
    'content-length': '6',
  });
  expect(seen.headers['x-real-ip']).toBeUndefined();
  return res;
}

/**
 * A handler that streams up to 256 MiB in 64 KiB writes and stops at the first write its
 * client's socket does not take (resuming on `drain`): `stats().blocked` says the
 * backpressure reached it, `stats().written` how much it wrote.
 */
export function endless(): {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  stats(): { written: number; blocked: boolean };
} {
  let written = 0;
  let blocked = false;
  const handler = (_req: IncomingMessage, res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024);
    const pump = (): void => {
      while (written < 256 * 1024 * 1024) {
        written += chunk.length;
        if (!res.write(chunk)) {
          blocked = true;
          return;
        }
      }
      res.end();
    };
    pump();
    res.on('drain', pump);
  };
  return { handler, stats: () => ({ written, blocked }) };
}
