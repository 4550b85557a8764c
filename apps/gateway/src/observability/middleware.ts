import type { ServerResponse } from 'node:http';
import {
  API_TIMING,
  type AppEnv,
  annotate,
  HARVEST_HEADER,
  harvestOf,
  nodeResponse,
  parseServerTiming,
  SHED_HEADER,
  type Stage,
  TENANT_HEADER,
} from '@ballast/app-shared';
import type { Context, MiddlewareHandler } from 'hono';
import { outcomeOf, routeOf, sizeClassOf } from './classify.ts';
import type { FrontDoor, FrontDoorRecord } from './front-door.ts';

/** Header @hono/node-server puts on the placeholder answer of a handler that wrote to Node's response itself. */
const ALREADY_SENT = 'x-hono-already-sent';

/**
 * The front door's measuring middleware (`app.use(frontDoorMetrics(frontDoor))`, first
 * on the public app): once a request's answer is sent, records its route, outcome,
 * tenant, image size, latency to the last byte, harvest and stage timings (from the API
 * server's `Server-Timing`) in `frontDoor`, and adds `outcome` and `stages` to the
 * request's log line. Works whether the handler returned a `Response` or piped the
 * upstream's answer straight to Node's response.
 */
export const frontDoorMetrics = (frontDoor: FrontDoor): MiddlewareHandler<AppEnv> =>
  async function frontDoorMetrics(c, next) {
    const started = performance.now();
    const at = Date.now();
    const outgoing = nodeResponse(c);
    const sent = outgoing === undefined ? undefined : captureHeaders(outgoing);
    await next();
    const headersMs = performance.now() - started;
    const direct = outgoing !== undefined && c.res.headers.get(ALREADY_SENT) !== null;
    const header = (name: string): string | null => (direct ? (sent?.get(name) ?? null) : c.res.headers.get(name));
    const status = direct ? outgoing.statusCode : c.res.status;
    const record = describe(c, header, status, at, headersMs);
    // The request's log line (written by the shared requestContext middleware, when the chain has it).
    if (c.var.fields !== undefined) annotate(c, { outcome: record.outcome, tenant: record.tenant, stages: record.stages });
    const done = (): void => {
      record.durationMs = performance.now() - started;
      record.stages.response = Math.max(0, record.durationMs - headersMs);
      // The client went away before the whole answer reached it.
      if (outgoing !== undefined && !outgoing.writableFinished) {
        record.status = 499;
        record.outcome = 'client_error';
      }
      frontDoor.record(record);
    };
    if (outgoing === undefined || outgoing.closed) done();
    else outgoing.once('close', done);
  };

/** What can be known of a request once its headers are ready. */
function describe(
  c: Context<AppEnv>,
  header: (name: string) => string | null,
  status: number,
  at: number,
  headersMs: number,
): FrontDoorRecord {
  const method = c.req.method;
  const path = c.req.path;
  const route = routeOf(method, path);
  const outcome = outcomeOf(status, header(SHED_HEADER) !== null);
  const timing = parseServerTiming(header('server-timing'));
  const api = timing[API_TIMING];
  const stages: Partial<Record<Stage, number>> = { gateway: api === undefined ? headersMs : Math.max(0, headersMs - api) };
  for (const stage of ['admission', 'enqueue', 'queue_wait', 'conversion'] as const) {
    if (timing[stage] !== undefined) stages[stage] = timing[stage];
  }
  const record: FrontDoorRecord = {
    requestId: c.var.requestId ?? header('x-request-id') ?? '',
    at,
    method,
    path,
    route,
    status,
    outcome,
    tenant: header(TENANT_HEADER) ?? 'anonymous',
    size: sizeClassOf(method, c.req.header('content-length')),
    durationMs: headersMs,
    stages,
  };
  const upstream = header('x-upstream');
  if (upstream !== null) record.upstream = upstream;
  if (route === 'resize' && outcome === 'success') record.harvest = harvestOf(header(HARVEST_HEADER));
  return record;
}

type HeaderValue = number | string | readonly string[];

/**
 * Keeps the headers a handler writes with `outgoing.writeHead(status, headers)`: Node
 * does not store those where `getHeader` finds them, and a proxy that pipes the
 * upstream's answer straight to the client writes them that way.
 */
function captureHeaders(outgoing: ServerResponse): { get(name: string): string | null } {
  let written: Record<string, HeaderValue | undefined> | readonly HeaderValue[] | undefined;
  const writeHead = outgoing.writeHead;
  outgoing.writeHead = function capturingWriteHead(this: ServerResponse, ...args: unknown[]) {
    const headers = args.find((a) => typeof a === 'object' && a !== null) as typeof written;
    if (headers !== undefined) written = headers;
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['writeHead'];
  const text = (value: HeaderValue | undefined): string | null =>
    value === undefined ? null : Array.isArray(value) ? value.join(', ') : String(value);
  return {
    get(name) {
      const own = outgoing.getHeader(name);
      if (own !== undefined) return text(own);
      if (written === undefined) return null;
      if (Array.isArray(written)) {
        // Raw [name, value, name, value…]: names in any case.
        for (let i = 0; i + 1 < written.length; i += 2) if (String(written[i]).toLowerCase() === name) return text(written[i + 1]);
        return null;
      }
      const record = written as Record<string, HeaderValue | undefined>;
      if (record[name] !== undefined) return text(record[name]);
      for (const key of Object.keys(record)) if (key.toLowerCase() === name) return text(record[key]);
      return null;
    },
  };
}
