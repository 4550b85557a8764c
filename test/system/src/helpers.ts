import sharp from 'sharp';

/** POSTs `body` to `/v1/resize?query` at `url`. */
export function resize(url: string, query: string, body: Uint8Array, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}/v1/resize?${query}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'image/jpeg' },
    ...init,
  });
}

/** The error code of a JSON error answer. */
export async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}

/** A small JPEG for tests (a few KB, generated, never committed). */
export function smallJpeg(width = 320, height = 240): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 30 }, background: 'black' } })
    .jpeg({ quality: 70 })
    .toBuffer();
}

/** A decompression bomb: 8000×8000 px (192 MB decoded) in a PNG of about 190 KB. */
export function bombPng(): Promise<Buffer> {
  return sharp({ create: { width: 8000, height: 8000, channels: 3, background: 'black' } })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
