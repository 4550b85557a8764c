import type { IncomingMessage } from 'node:http';
import { durationMs, integer } from '@ballast/common';
import type { Context } from 'hono';
import { HttpError } from './errors.ts';
import { bodyTooLarge, declaredLength, nodeRequest, nodeResponse } from './http.ts';

/** A snapshot of a {@link BodyBudget}. */
export interface BodyBudgetStats {
  /** Bytes held by bodies being read or waiting to be sent on. */
  usedBytes: number;
  maxBytes: number;
  /** The most one client may hold. */
  maxBytesPerClient: number;
  /** Clients holding bytes now. */
  clients: number;
  /** Bodies refused because the budget (or their client's share) was spent, since creation. */
  refused: number;
}

/** A share of a {@link BodyBudget} held by one request; release it when the body is no longer needed. */
export interface BodyLease extends Disposable {
  /** Takes `bytes` more; false (and nothing taken) when the budget, or the client's share of it, cannot cover them. */
  take(bytes: number): boolean;
  /** Gives back everything taken. Idempotent. */
  release(): void;
}

/**
 * A bound on the bytes of request bodies a service holds in memory at once, over all
 * requests, and per client: bodies being read count as their bytes arrive, until the
 * request releases them. A body that does not fit is refused with 503 rather than read,
 * so many slow or large uploads cannot exhaust memory, and one client (one address)
 * cannot take more than its share from everyone else.
 */
export class BodyBudget {
  readonly maxBytes: number;
  readonly maxBytesPerClient: number;
  readonly #perClient = new Map<string, number>();
  #used = 0;
  #refused = 0;

  /** @throws {InvalidOptionError} when a bound is not a positive integer. */
  constructor(maxBytes: number, maxBytesPerClient: number = maxBytes) {
    this.maxBytes = integer('bodyBudgetBytes', maxBytes, { min: 1 });
    this.maxBytesPerClient = Math.min(this.maxBytes, integer('bodyBudgetPerClientBytes', maxBytesPerClient, { min: 1 }));
  }

  /** A new, empty lease, counted against `client`'s share (one key per client address). */
  lease(client = ''): BodyLease {
    let held = 0;
    const release = (): void => {
      if (held === 0) return;
      this.#used -= held;
      const left = (this.#perClient.get(client) ?? held) - held;
      if (left > 0) this.#perClient.set(client, left);
      else this.#perClient.delete(client);
      held = 0;
    };
    return {
      take: (bytes) => {
        const mine = this.#perClient.get(client) ?? 0;
        if (this.#used + bytes > this.maxBytes || mine + bytes > this.maxBytesPerClient) {
          this.#refused++;
          return false;
        }
        this.#used += bytes;
        this.#perClient.set(client, mine + bytes);
        held += bytes;
        return true;
      },
      release,
      [Symbol.dispose]: release,
    };
  }

  stats(): BodyBudgetStats {
    return {
      usedBytes: this.#used,
      maxBytes: this.maxBytes,
      maxBytesPerClient: this.maxBytesPerClient,
      clients: this.#perClient.size,
      refused: this.#refused,
    };
  }
}

/** How a body may be read. */
export interface BodyLimits {
  /** Largest body, bytes: refused from `content-length` before reading, or as soon as the stream crosses it. @default 10485760 (10 MiB) */
  maxBodyBytes?: number;
  /** Time for the whole body from the start of reading, ms. @default 30000 */
  bodyTimeoutMs?: number;
  /** Least average upload rate, bytes/s, enforced once `bodyGraceMs` have passed; 0 disables. @default 16384 */
  minBodyBytesPerSec?: number;
  /** Time before the upload rate is enforced, ms. @default 2000 */
  bodyGraceMs?: number;
}

/** Validated {@link BodyLimits}. */
export type ResolvedBodyLimits = Required<BodyLimits>;

/** Validates {@link BodyLimits} and fills in the defaults. */
export function resolveBodyLimits(limits: BodyLimits = {}): ResolvedBodyLimits {
  return {
    maxBodyBytes: integer('maxBodyBytes', limits.maxBodyBytes ?? 10 * 1024 * 1024, { min: 1 }),
    bodyTimeoutMs: durationMs('bodyTimeoutMs', limits.bodyTimeoutMs ?? 30_000, { min: 1 }),
    minBodyBytesPerSec: integer('minBodyBytesPerSec', limits.minBodyBytesPerSec ?? 16_384, { min: 0 }),
    bodyGraceMs: durationMs('bodyGraceMs', limits.bodyGraceMs ?? 2000),
  };
}

/**
 * Reads a request body within {@link BodyLimits}: over `maxBytes` → 413
 * `ERR_BALLAST_BODY_TOO_LARGE` (a declared length before a byte is read; the rest is
 * discarded so the answer can be read); the budget spent → 503 `ERR_BALLAST_BODY_BUDGET`;
 * too slow or too long → 408 `ERR_BALLAST_BODY_TIMEOUT` (both stop reading and close the
 * connection once the answer is sent); the client gone → 400 `ERR_BALLAST_BODY_INCOMPLETE`.
 *
 * Under @hono/node-server the bytes are read from Node's request directly, skipping
 * the web-stream adapter and its copies.
 */
export async function readBody(c: Context, limits: ResolvedBodyLimits, lease?: BodyLease): Promise<Buffer> {
  const declared = declaredLength(c);
  if (declared !== undefined && declared > limits.maxBodyBytes) throw bodyTooLarge(limits.maxBodyBytes, declared);
  const guard = new BodyGuard(limits, lease);
  const incoming = nodeRequest(c);
  try {
    const body = incoming ? await readIncoming(incoming, guard) : await readWeb(c.req.raw, guard);
    return body;
  } catch (error) {
    if (incoming && error instanceof HttpError && error.headers.connection === 'close') {
      // The rest of the body will not be read: close the connection once the answer is out.
      const outgoing = nodeResponse(c);
      if (outgoing) outgoing.once('finish', () => incoming.destroy());
      else incoming.destroy();
    }
    throw error;
  } finally {
    guard.dispose();
  }
}

/** The limits, budget and timers of one body being read. */
class BodyGuard {
  total = 0;
  readonly failed: Promise<never>;
  readonly #maxBytes: number;
  readonly #lease: BodyLease | undefined;
  readonly #timers: Array<ReturnType<typeof setTimeout>> = [];
  #fail: (error: HttpError) => void = () => {};

  constructor(limits: ResolvedBodyLimits, lease: BodyLease | undefined) {
    this.#maxBytes = limits.maxBodyBytes;
    // Bytes count against the budget as they arrive, not as declared: a client that
    // declares 10 MiB and dribbles holds only what it has sent.
    this.#lease = lease;
    this.failed = new Promise<never>((_, reject) => {
      this.#fail = reject;
    });
    this.failed.catch(() => {});
    const { bodyTimeoutMs: timeoutMs, minBodyBytesPerSec: minRate, bodyGraceMs: graceMs } = limits;
    const started = Date.now();
    this.#timers.push(setTimeout(() => this.#fail(bodyTimeout(`the body did not arrive within ${timeoutMs} ms`)), timeoutMs));
    if (minRate > 0) {
      const check = setInterval(
        () => {
          const elapsed = Date.now() - started;
          if (elapsed >= graceMs && this.total < (minRate * elapsed) / 1000) {
            this.#fail(bodyTimeout(`the body arrives too slowly: ${this.total} bytes in ${elapsed} ms, under ${minRate} bytes/s`));
          }
        },
        Math.min(1000, Math.max(100, graceMs)),
      );
      this.#timers.push(check);
    }
  }

  /** Counts a chunk; throws when it crosses the size limit or the budget. */
  add(bytes: number): void {
    this.total += bytes;
    if (this.total > this.#maxBytes) throw bodyTooLarge(this.#maxBytes);
    if (this.#lease && !this.#lease.take(bytes)) throw budgetSpent();
  }

  dispose(): void {
    for (const timer of this.#timers) clearTimeout(timer);
  }
}

function readIncoming(incoming: IncomingMessage, guard: BodyGuard): Promise<Buffer> {
  if (incoming.readableEnded) return Promise.resolve(Buffer.alloc(0));
  const chunks: Buffer[] = [];
  const read = new Promise<Buffer>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      try {
        guard.add(chunk.byteLength);
      } catch (error) {
        cleanup();
        // Over the size limit: discard the rest, so the connection can carry the answer.
        // Over the budget: stop reading (the connection closes after the answer), so a
        // client sending more than its share costs nothing more.
        if ((error as HttpError).status === 503) incoming.pause();
        else incoming.resume();
        reject(error);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, guard.total));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      cleanup();
      reject(new HttpError(400, 'ERR_BALLAST_BODY_INCOMPLETE', 'the client closed the connection before sending the whole body'));
    };
    const cleanup = (): void => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    guard.failed.catch((error: unknown) => {
      cleanup();
      incoming.pause();
      reject(error);
    });
    incoming.on('data', onData);
    incoming.once('end', onEnd);
    incoming.once('error', onError);
    incoming.once('close', onClose);
  });
  return read;
}

async function readWeb(request: Request, guard: BodyGuard): Promise<Buffer> {
  if (!request.body) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  try {
    while (true) {
      const { done, value } = await Promise.race([reader.read(), guard.failed]);
      if (done) break;
      guard.add(value.byteLength);
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
  return Buffer.concat(chunks, guard.total);
}

function budgetSpent(): HttpError {
  return new HttpError(503, 'ERR_BALLAST_BODY_BUDGET', 'the server holds as many request bodies as it may; retry shortly', {
    'retry-after': '1',
    connection: 'close',
  });
}

function bodyTimeout(message: string): HttpError {
  return new HttpError(408, 'ERR_BALLAST_BODY_TIMEOUT', message, { connection: 'close' });
}
