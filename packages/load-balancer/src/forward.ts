import { BallastError, durationMs, func, isBallastError, linkSignal, nonEmptyString, TimeoutError } from '@ballast/common';
import type { LoadBalancer } from './balancer.ts';
import type { Endpoint, PickOptions } from './types.ts';

/** Why a request to an upstream failed. */
export type UpstreamFailure =
  /** No response headers within `timeoutMs`. */
  | 'timeout'
  /** Connection refused, reset or otherwise failed before a response. */
  | 'unreachable';

/** Thrown when the chosen upstream did not answer. `cause` holds the transport error. */
export class UpstreamError extends BallastError {
  readonly reason: UpstreamFailure;
  /** The endpoint that failed. */
  readonly endpoint: Endpoint;
  constructor(reason: UpstreamFailure, endpoint: Endpoint, cause: unknown) {
    const what = reason === 'timeout' ? 'did not answer in time' : `could not be reached (${describeCause(cause)})`;
    super('ERR_BALLAST_UPSTREAM', `upstream ${endpoint.id} (${endpoint.address}) ${what}`, { cause });
    this.reason = reason;
    this.endpoint = endpoint;
  }
}

/** True for an {@link UpstreamError} from any copy of Ballast. */
export function isUpstreamError(value: unknown): value is UpstreamError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_UPSTREAM';
}

/** Options shared by `balancedFetch` and the Hono proxy. */
export interface ForwardOptions {
  /** Time allowed for response headers, ms; the body may stream for longer. @default 30_000 */
  timeoutMs?: number;
  /** Response header carrying the upstream's load (0–1), fed to `done({ load })`; `false` to ignore. @default 'x-ballast-load' */
  loadHeader?: string | false;
  /** Which responses count as the upstream failing (outlier detection, error rate). @default status >= 500 */
  isFailure?: (response: Response) => boolean;
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Forward options with defaults applied. */
export interface ResolvedForwardOptions {
  timeoutMs: number;
  loadHeader: string | false;
  isFailure: (response: Response) => boolean;
  fetch: typeof fetch;
}

/** @throws {InvalidOptionError} naming the first invalid option. */
export function resolveForwardOptions(options: ForwardOptions): ResolvedForwardOptions {
  const { loadHeader, isFailure, fetch: fetchImpl } = options;
  return {
    timeoutMs: durationMs('timeoutMs', options.timeoutMs ?? 30_000, { min: 1 }),
    loadHeader: loadHeader === false ? false : nonEmptyString('loadHeader', loadHeader ?? 'x-ballast-load').toLowerCase(),
    isFailure: isFailure === undefined ? (response) => response.status >= 500 : func('isFailure', isFailure),
    fetch: fetchImpl === undefined ? (input, init) => fetch(input, init) : func('fetch', fetchImpl),
  };
}

/** `address` + `path` without doubling or dropping the slash between them. */
export function joinUrl(address: string, path: string): string {
  const base = address.endsWith('/') ? address.slice(0, -1) : address;
  return path.startsWith('/') ? base + path : `${base}/${path}`;
}

/** One request to send through the balancer. */
export interface ForwardRequest {
  /** Path and query, e.g. `/images/1?w=200`. */
  path: string;
  init: RequestInit;
  /** The caller's signal: aborting it aborts the upstream request, before or during the body. */
  signal: AbortSignal | undefined;
  pick: PickOptions | undefined;
}

/**
 * Picks an upstream, sends the request with a header timeout and the caller's abort
 * linked through, and releases the pick when the response body has been read,
 * failed or been cancelled, so in-flight counts cover the whole exchange.
 *
 * @throws {NoEndpointAvailableError} when no upstream can take it.
 * @throws {UpstreamError} when the upstream did not answer.
 * @throws the caller's abort reason when the caller aborted.
 */
export async function forward(balancer: LoadBalancer, request: ForwardRequest, options: ResolvedForwardOptions): Promise<Response> {
  // Already given up: no endpoint is reserved, and none is counted as picked.
  request.signal?.throwIfAborted();
  const handle = balancer.pick(request.pick);
  const endpoint = handle.endpoint;
  const link = linkSignal([request.signal]);
  const timer = setTimeout(() => link.abort(new TimeoutError(options.timeoutMs)), options.timeoutMs);
  let response: Response;
  try {
    response = await options.fetch(joinUrl(endpoint.address, request.path), { ...request.init, signal: link.signal });
  } catch (error) {
    clearTimeout(timer);
    link.dispose();
    if (request.signal?.aborted) {
      handle.done({ ok: false, cancelled: true });
      throw request.signal.reason;
    }
    handle.done({ ok: false });
    throw new UpstreamError(link.signal.reason instanceof TimeoutError ? 'timeout' : 'unreachable', endpoint, link.signal.reason ?? error);
  }
  clearTimeout(timer);
  let report: { ok: boolean; latencyMs: number; load: number | undefined };
  try {
    report = { ok: !options.isFailure(response), latencyMs: handle.elapsedMs(), load: readLoad(response, options.loadHeader) };
  } catch (error) {
    // A throwing isFailure hook must not leave the pick held or the upstream open.
    link.abort(error);
    handle.done({ ok: false, cancelled: true });
    throw error;
  }
  const body = response.body;
  if (body === null) {
    link.dispose();
    handle.done(report);
    return response;
  }
  let finished = false;
  const finish = (ok: boolean, cancelled = false): void => {
    if (finished) return;
    finished = true;
    link.dispose();
    handle.done({ ...report, ok: report.ok && ok, cancelled });
  };
  const reader = body.getReader();
  const tracked = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const chunk = await reader.read();
          if (chunk.done) {
            finish(true);
            controller.close();
          } else {
            controller.enqueue(chunk.value);
          }
        } catch (error) {
          // Cut mid-body: by the caller (cancelled) or by the upstream (a failure).
          finish(false, request.signal?.aborted === true);
          controller.error(error);
        }
      },
      async cancel(reason) {
        finish(true, true);
        link.abort(reason);
        await reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(tracked, { status: response.status, statusText: response.statusText, headers: response.headers });
}

function readLoad(response: Response, header: string | false): number | undefined {
  if (header === false) return undefined;
  const raw = response.headers.get(header)?.trim();
  // Number('') is 0: an empty header says nothing, not "idle".
  if (raw === undefined || raw === '') return undefined;
  const load = Number(raw);
  return Number.isFinite(load) ? load : undefined;
}

function describeCause(cause: unknown): string {
  // fetch wraps the transport error (its cause has the code); undici's dispatcher does not.
  const inner = (cause as { cause?: { code?: unknown } } | undefined)?.cause;
  if (typeof inner?.code === 'string') return inner.code;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  return cause instanceof Error ? cause.message : String(cause);
}
