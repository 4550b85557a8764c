/**
 * Helpers for adapters that answer through Node's `ServerResponse` (Express, Fastify's
 * `reply.raw`, `node:http`): when a response is over, whether its client went away, and
 * writing an {@link ErrorAnswer}. Typed structurally, so this package needs no Node types.
 */
import type { ErrorAnswer } from './http.ts';

/** The part of Node's `ServerResponse` these helpers use. */
export interface NodeResponse {
  readonly headersSent: boolean;
  /** True once the whole response was handed to the operating system. */
  readonly writableFinished: boolean;
  /** True once the response (or its connection) was destroyed. */
  readonly destroyed: boolean;
  once(event: 'finish' | 'close', listener: () => void): unknown;
  off(event: 'finish' | 'close', listener: () => void): unknown;
  statusCode: number;
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  end(chunk?: string): unknown;
}

/**
 * Calls `listener` once when the response is over: `true` when it was sent whole
 * (`finish`), `false` when it closed first (the client went away, the connection was cut,
 * the response was destroyed). Called at once when the response is already over. Leaves
 * no listener behind once called.
 */
export function onResponseEnd(response: NodeResponse, listener: (finished: boolean) => void): void {
  if (response.writableFinished) {
    listener(true);
    return;
  }
  if (response.destroyed) {
    listener(false);
    return;
  }
  const onFinish = (): void => {
    response.off('close', onClose);
    listener(true);
  };
  const onClose = (): void => {
    response.off('finish', onFinish);
    listener(response.writableFinished);
  };
  response.once('finish', onFinish);
  response.once('close', onClose);
}

/**
 * An `AbortSignal` that aborts when the response closes before it was sent whole: the
 * client went away. Its listeners are gone once the response is over.
 */
export function clientGoneSignal(response: NodeResponse): AbortSignal {
  const controller = new AbortController();
  onResponseEnd(response, (finished) => {
    if (!finished) controller.abort(new Error('the client went away'));
  });
  return controller.signal;
}

/**
 * Writes an {@link ErrorAnswer} as JSON (`content-type: application/json`), keeping the
 * headers set on the response before. Does nothing when the head was sent already or the
 * response is over.
 */
export function sendErrorAnswer(response: NodeResponse, answer: ErrorAnswer): void {
  if (response.headersSent || response.writableFinished || response.destroyed) return;
  for (const [name, value] of Object.entries(answer.headers)) response.setHeader(name, value);
  response.setHeader('content-type', 'application/json');
  response.statusCode = answer.status;
  // Node sets content-length itself when the whole body goes to end().
  response.end(JSON.stringify(answer.body));
}
