import { parseResizeParams } from '@ballast/app-queue';
import { HttpError } from '@ballast/app-shared';
import type { MiddlewareHandler } from 'hono';
import type { ApiEnv, ResizeRequest } from './options.ts';

const RESIZE_KEYS = ['width', 'height', 'fit', 'format', 'quality', 'effort', 'animated', 'keepMetadata'];

function invalid(message: string): HttpError {
  return new HttpError(400, 'ERR_BALLAST_INVALID_OPTION', message);
}

/**
 * Reads and validates every parameter of a resize request: unknown, repeated or
 * malformed ones are refused (400, naming the parameter) before anything else is read.
 */
export function parseResizeQuery(queries: Record<string, string[]>, defaultDeadlineMs: number, maxDeadlineMs: number): ResizeRequest {
  const raw: Record<string, unknown> = {};
  let mode: ResizeRequest['mode'] = 'sync';
  let deadlineMs = defaultDeadlineMs;
  let degrade = false;
  for (const [key, values] of Object.entries(queries)) {
    if (values.length > 1) throw invalid(`parameter ${JSON.stringify(key)} is given ${values.length} times; give it once`);
    const value = values[0] ?? '';
    if (key === 'mode') {
      if (value !== 'sync' && value !== 'async') throw invalid(`mode must be sync or async, got ${JSON.stringify(value)}`);
      mode = value;
    } else if (key === 'deadlineMs') {
      const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
      if (!(n >= 1 && n <= maxDeadlineMs))
        throw invalid(`deadlineMs must be an integer between 1 and ${maxDeadlineMs}, got ${JSON.stringify(value)}`);
      deadlineMs = n;
    } else if (key === 'degrade') {
      if (value !== 'true' && value !== 'false') throw invalid(`degrade must be true or false, got ${JSON.stringify(value)}`);
      degrade = value === 'true';
    } else if (RESIZE_KEYS.includes(key)) raw[key] = value;
    else throw invalid(`unknown parameter ${JSON.stringify(key)}; expected one of mode, deadlineMs, degrade, ${RESIZE_KEYS.join(', ')}`);
  }
  const resize = parseResizeParams(raw) as unknown as Record<string, unknown>; // throws InvalidOptionError → 400
  return degrade ? { resize, mode, deadlineMs, degrade } : { resize, mode, deadlineMs };
}

/** Validates parameters and content type into `c.var.request`, before the body is touched. */
export const validateResize = (defaultDeadlineMs: number, maxDeadlineMs: number): MiddlewareHandler<ApiEnv> =>
  async function validateResize(c, next) {
    const request = parseResizeQuery(c.req.queries(), defaultDeadlineMs, maxDeadlineMs);
    c.set('request', request);
    c.set('usage', c.var.usage ?? {});
    c.var.fields.mode = request.mode;
    checkImageContentType(c.req.header('content-type'));
    await next();
  };

/** Refuses (415) a body declared as anything but an image or octet stream; no declared type is accepted. */
export function checkImageContentType(type = ''): void {
  if (type !== '' && !type.startsWith('image/') && !type.startsWith('application/octet-stream')) {
    throw new HttpError(
      415,
      'ERR_BALLAST_CONTENT_TYPE',
      `content-type must be image/* or application/octet-stream, got ${JSON.stringify(type)}`,
    );
  }
}
