/** An error answered with `status` and a JSON body `{ error: { code, message } }`. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** The JSON error body every Ballast service answers with. */
export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/**
 * Reads a request body up to `maxBytes`, refusing early: a declared
 * `Content-Length` above the limit is refused before a byte is read, and a body
 * that turns out longer is cut off as soon as it crosses the limit.
 */
export async function readBody(request: Request, maxBytes: number): Promise<Buffer> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes, Number(declared));
  if (!request.body) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

function tooLarge(maxBytes: number, declared?: number): HttpError {
  const size = declared === undefined ? 'larger' : `${declared} bytes`;
  return new HttpError(413, 'ERR_BALLAST_BODY_TOO_LARGE', `request body is ${size}; the limit is ${maxBytes} bytes`);
}

/** HTTP status for a job failure code stored by a worker. */
export function statusForFailure(code: string): number {
  switch (code) {
    case 'ERR_BALLAST_INVALID_OPTION':
      return 400;
    case 'ERR_BALLAST_IMAGE_UNSUPPORTED':
      return 415;
    case 'ERR_BALLAST_IMAGE_TOO_LARGE':
      return 413;
    case 'ERR_BALLAST_IMAGE_CORRUPT':
    case 'ERR_BALLAST_IMAGE_TIMEOUT':
    case 'ERR_BALLAST_IMAGE_FAILED':
      return 422;
    default:
      return 500;
  }
}
