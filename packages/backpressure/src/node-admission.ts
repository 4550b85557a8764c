/**
 * Admission of a request answered through Node's `ServerResponse`: the shared core of the
 * Express and Fastify adapters. The slot is held until the response is over, whichever
 * way it ends, since neither framework says when a handler is done.
 */
import { clientGoneSignal, type NodeResponse, onResponseEnd, reportListenerError } from '@ballast/common';
import { isShedError, type ShedError } from './errors.ts';
import type { ConcurrencyLimiter, Permit, ReleaseOptions } from './limiter.ts';
import type { Priority } from './wait-queue.ts';

/** What admitting a request came to: run it, answer the {@link ShedError}, or nothing (the client went away). */
export type NodeAdmission = 'admitted' | 'gone' | ShedError;

const OK: ReleaseOptions = Object.freeze({ ok: true });
const DROPPED: ReleaseOptions = Object.freeze({ ok: false });
const IGNORE: ReleaseOptions = Object.freeze({ ignore: true });

/**
 * Takes a slot of `limiter` for the request answered by `response`, waiting in its queue
 * when there is room. Once admitted, the slot is released when the response is over:
 * sent whole (its status judged by `isDropped` for the adaptive limit), or closed first
 * (the client went away, the connection broke: the limit learns nothing from it). A client
 * that goes away while queued leaves the queue at once.
 *
 * @returns `'admitted'`, the {@link ShedError} to answer, or `'gone'` when the client left first.
 */
export async function admitNodeRequest(
  limiter: ConcurrencyLimiter,
  priority: Priority,
  response: NodeResponse,
  isDropped: (status: number) => boolean,
): Promise<NodeAdmission> {
  // Made only when the request has to wait: admitting or shedding at once needs no signal.
  let signal: AbortSignal | undefined;
  const clientGone = (): AbortSignal => {
    signal = clientGoneSignal(response);
    return signal;
  };
  let permit: Permit;
  try {
    permit = await limiter.acquire({ signal: clientGone, priority });
  } catch (error) {
    if (isShedError(error)) return error;
    if (signal?.aborted) return 'gone';
    throw error;
  }
  if (signal?.aborted || response.destroyed) {
    // Went away between getting the slot and running: the handler never starts.
    permit.release(IGNORE);
    return 'gone';
  }
  onResponseEnd(response, (finished) => permit.release(finished ? verdict(isDropped, response.statusCode) : IGNORE));
  return 'admitted';
}

function verdict(isDropped: (status: number) => boolean, status: number): ReleaseOptions {
  try {
    return isDropped(status) ? DROPPED : OK;
  } catch (error) {
    // Runs in a response event: thrown, it would be an uncaught exception.
    reportListenerError(error, 'isDropped');
    return IGNORE;
  }
}
