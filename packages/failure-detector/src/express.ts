/**
 * Express 5 adapter: a route handler that receives heartbeats over HTTP. Same options,
 * answers and error body as `@ballast/failure-detector/hono`.
 *
 * @example
 * ```ts
 * import { HeartbeatMonitor } from '@ballast/failure-detector';
 * import { heartbeatHandler } from '@ballast/failure-detector/express';
 *
 * const monitor = new HeartbeatMonitor();
 * app.post('/heartbeats', heartbeatHandler(monitor));
 * ```
 */
import { sendErrorAnswer } from '@ballast/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { HEARTBEAT_TOO_LARGE, type HeartbeatHandlerOptionsOf, heartbeatReceiver } from './heartbeat-http.ts';
import type { HeartbeatMonitor } from './monitor.ts';

export type { HeartbeatRejectionCode } from './heartbeat-http.ts';

/** Options of {@link heartbeatHandler}: `accept(id, req)` sees the Express request. */
export type HeartbeatHandlerOptions = HeartbeatHandlerOptionsOf<Request>;

const TOO_LARGE = Symbol('tooLarge');

/**
 * The body as text, read up to `maxBytes`; past that it stops reading and the connection
 * is closed after the answer, so an oversized upload costs no more than `maxBytes`.
 */
function readText(req: Request, res: Response, maxBytes: number): Promise<string | typeof TOO_LARGE> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      done();
      req.pause();
      res.setHeader('connection', 'close');
      resolve(TOO_LARGE);
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (error: Error): void => {
      done();
      reject(error);
    };
    // The client went away mid-upload: nothing to record, nobody to answer.
    const onClose = (): void => onError(new Error('the client went away before sending the whole heartbeat'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/**
 * An Express handler for `POST` heartbeats: reads `{"id":"api-1","seq":42}` (as sent by
 * `httpHeartbeatSender`) and records a heartbeat for `id` in the monitor, timed at arrival
 * on the monitor's clock. It reads the body itself (up to `maxBodyBytes`), or takes what a
 * body parser mounted before it produced (`express.json()`, `express.text()`, `express.raw()`).
 * @throws {InvalidOptionError} naming the first invalid option. Answers 204, or, with the body
 * `{ error: { code, message } }`, 400 for a malformed body (`ERR_BALLAST_HEARTBEAT_MALFORMED`),
 * 403 when `accept` refuses (`ERR_BALLAST_HEARTBEAT_REFUSED`), 413 when the body is too large
 * (`ERR_BALLAST_HEARTBEAT_TOO_LARGE`). An error thrown by `accept` goes to Express's error handler.
 */
export const heartbeatHandler = (monitor: Pick<HeartbeatMonitor, 'heartbeat'>, options: HeartbeatHandlerOptions = {}): RequestHandler => {
  const receiver = heartbeatReceiver(monitor, options);
  return function heartbeatHandler(req: Request, res: Response, next: NextFunction): void {
    (async () => {
      if (Number(req.headers['content-length'] ?? 0) > receiver.maxBodyBytes) {
        res.setHeader('connection', 'close');
        return sendErrorAnswer(res, HEARTBEAT_TOO_LARGE);
      }
      // A body parser mounted before has read the body already.
      const body = req.readableEnded ? req.body : await readText(req, res, receiver.maxBodyBytes);
      const answer = body === TOO_LARGE ? HEARTBEAT_TOO_LARGE : await receiver.receive(body, req);
      if (answer) sendErrorAnswer(res, answer);
      else res.status(204).end();
    })().catch(next);
  };
};
