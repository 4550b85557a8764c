import { InProcessQueue, parseResizeParams } from '@ballast/app-queue';
import { memoryLogger, sniffImageFormat } from '@ballast/app-shared';
import { eventually } from '@ballast/test/http';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CpuMeter,
  conversionTimeoutMs,
  failureDetail,
  type JobUsage,
  logWorker,
  outputSize,
  ResizeWorker,
  resizeImage,
  resolveLimits,
  sampleJpeg,
} from './index.ts';

let jpeg: Buffer;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 200, g: 40, b: 40 } } })
    .jpeg()
    .toBuffer();
});

const limits = resolveLimits();

describe('resizeImage', () => {
  it.each(['jpeg', 'png', 'webp', 'avif'] as const)('resizes to %s', async (format) => {
    const out = await resizeImage(jpeg, parseResizeParams({ width: '100', format, effort: format === 'avif' ? '0' : undefined }), limits);
    const meta = await sharp(out.data).metadata();
    expect(meta.format === 'heif' ? 'avif' : meta.format).toBe(format);
    expect([meta.width, meta.height]).toEqual([100, 75]);
  });

  it.each([
    ['cover', 50, 50],
    ['contain', 50, 50],
    ['inside', 50, 38],
    ['outside', 67, 50],
    ['fill', 50, 50],
  ] as const)('fit %s into 50×50 gives %i×%i', async (fit, w, h) => {
    const out = await resizeImage(jpeg, parseResizeParams({ width: 50, height: 50, fit }), limits);
    expect([out.width, out.height]).toEqual([w, h]);
    expect(outputSize(400, 300, { width: 50, height: 50, fit })).toEqual({ width: w, height: h });
  });

  it('auto-orients and strips metadata unless asked to keep it', async () => {
    const rotated = await sharp(jpeg).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const out = await resizeImage(rotated, parseResizeParams({}), limits);
    const meta = await sharp(out.data).metadata();
    expect([meta.width, meta.height]).toEqual([300, 400]);
    expect(meta.exif).toBeUndefined();
    const kept = await resizeImage(rotated, parseResizeParams({ keepMetadata: 'true' }), limits);
    expect((await sharp(kept.data).metadata()).exif).toBeDefined();
  });

  it('keeps one animation frame unless asked for all', async () => {
    const frames = await Promise.all(
      [0, 1, 2].map((i) =>
        sharp({ create: { width: 32, height: 32, channels: 3, background: { r: i * 80, g: 0, b: 0 } } })
          .png()
          .toBuffer(),
      ),
    );
    const animated = await sharp(frames, { join: { animated: true } })
      .webp()
      .toBuffer();
    const one = await resizeImage(animated, parseResizeParams({ format: 'webp' }), limits);
    expect((await sharp(one.data, { pages: -1 }).metadata()).pages ?? 1).toBe(1);
    const all = await resizeImage(animated, parseResizeParams({ format: 'webp', animated: 'true' }), limits);
    expect((await sharp(all.data, { pages: -1 }).metadata()).pages).toBe(3);
  });

  it.each([
    ['not an image', () => Buffer.from('hello, not an image'), 'ERR_BALLAST_IMAGE_UNSUPPORTED'],
    ['a truncated JPEG', () => jpeg.subarray(0, Math.floor(jpeg.length / 2)), 'ERR_BALLAST_IMAGE_CORRUPT'],
  ])('refuses %s with a clear error', async (_name, input, code) => {
    await expect(resizeImage(input(), parseResizeParams({ width: 10 }), limits)).rejects.toMatchObject({ code });
  });

  it('says what was wrong without passing on what libvips said', async () => {
    const error = await resizeImage(jpeg.subarray(0, Math.floor(jpeg.length / 2)), parseResizeParams({ width: 10 }), limits).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'ERR_BALLAST_IMAGE_CORRUPT', message: 'input image is damaged or truncated' });
    expect(failureDetail(error)).toMatch(/jpeg|premature|VipsJpeg/i); // for the log only
  });

  it.each(['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff'] as const)('converts %s input, known by its first bytes', async (format) => {
    const input = await sharp(jpeg)
      .toFormat(format, format === 'avif' ? { effort: 0 } : {})
      .toBuffer();
    expect(sniffImageFormat(input)).toBe(format);
    const out = await resizeImage(input, parseResizeParams({ width: 20 }), limits);
    expect(out.width).toBe(20);
  });

  it('refuses SVG before librsvg parses it, unless enabled by name', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>');
    await expect(resizeImage(svg, parseResizeParams({ width: 10 }), limits)).rejects.toMatchObject({
      code: 'ERR_BALLAST_IMAGE_UNSUPPORTED',
      message: 'input is not an image in an accepted format (JPEG, PNG, WebP, AVIF, GIF, TIFF)',
    });
    const withSvg = resolveLimits({ inputFormats: ['png', 'svg'] });
    expect((await resizeImage(svg, parseResizeParams({ width: 10 }), withSvg)).width).toBe(10);
    await expect(resizeImage(jpeg, parseResizeParams({ width: 10 }), withSvg)).rejects.toMatchObject({
      code: 'ERR_BALLAST_IMAGE_UNSUPPORTED',
    });
    expect(() => resolveLimits({ inputFormats: [] })).toThrow(/inputFormats/);
  });

  it('refuses an input whose header does not match its first bytes', async () => {
    // A PNG signature in front of a JPEG: libvips would read it as a JPEG by its content.
    const forged = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), jpeg]);
    await expect(resizeImage(forged, parseResizeParams({ width: 10 }), limits)).rejects.toMatchObject({
      code: expect.stringMatching(/^ERR_BALLAST_IMAGE_(UNSUPPORTED|CORRUPT)$/),
    });
  });

  it('refuses a decompression bomb from its header, and inputs over the byte limit', async () => {
    const bomb = await sharp({ create: { width: 3000, height: 3000, channels: 3, background: 'black' } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    expect(bomb.length).toBeLessThan(100_000); // 27 MB of pixels in a few KB
    const small = resolveLimits({ maxInputPixels: 1_000_000, maxInputBytes: 50_000 });
    await expect(resizeImage(bomb, parseResizeParams({ width: 10 }), small)).rejects.toMatchObject({
      code: 'ERR_BALLAST_IMAGE_TOO_LARGE',
      message: 'input image has more pixels than allowed',
    });
    await expect(resizeImage(Buffer.alloc(60_000), parseResizeParams({}), small)).rejects.toMatchObject({
      code: 'ERR_BALLAST_IMAGE_TOO_LARGE',
    });
  });
});

describe('AVIF output limit', () => {
  it('defaults to 1 MiP and must be a positive integer', () => {
    expect(limits.maxAvifOutputPixels).toBe(1_048_576);
    expect(() => resolveLimits({ maxAvifOutputPixels: 0 })).toThrow(/maxAvifOutputPixels/);
  });

  it('refuses an AVIF output over the limit from the input header and the parameters', async () => {
    const big = await sharp({ create: { width: 2000, height: 1500, channels: 3, background: 'white' } })
      .jpeg()
      .toBuffer();
    // No resize: the output is the input's 3 MP.
    await expect(resizeImage(big, parseResizeParams({ format: 'avif' }), limits)).rejects.toMatchObject({
      code: 'ERR_BALLAST_IMAGE_TOO_LARGE',
      message: expect.stringMatching(/^AVIF output of 2000×1500 px exceeds the AVIF limit of 1048576 px/),
    });
    // Height alone scales the width from the input: 1600×1200.
    await expect(resizeImage(big, parseResizeParams({ format: 'avif', height: 1200 }), limits)).rejects.toMatchObject({
      message: expect.stringMatching(/^AVIF output of 1600×1200 px/),
    });
    // Other formats keep the general limit; a smaller AVIF output of the same input is made.
    expect((await resizeImage(big, parseResizeParams({ format: 'webp', effort: '0' }), limits)).width).toBe(2000);
    const small = await resizeImage(big, parseResizeParams({ format: 'avif', width: 1000, effort: '0' }), limits);
    expect([small.width, small.height]).toEqual([1000, 750]);
  });

  it('counts the output after auto-orientation, fit and every frame kept', async () => {
    const tight = resolveLimits({ maxAvifOutputPixels: 4000 });
    const tall = await sharp({ create: { width: 80, height: 40, channels: 3, background: 'white' } })
      .withMetadata({ orientation: 6 })
      .jpeg()
      .toBuffer();
    // Shown upright it is 40×80: fitting inside 100×50 gives 25×50 (1250 px), not 100×50.
    const upright = await resizeImage(
      tall,
      parseResizeParams({ format: 'avif', width: 100, height: 50, fit: 'inside', effort: '0' }),
      tight,
    );
    expect([upright.width, upright.height]).toEqual([25, 50]);
    await expect(
      resizeImage(tall, parseResizeParams({ format: 'avif', width: 100, height: 50, fit: 'outside', effort: '0' }), tight),
    ).rejects.toMatchObject({ code: 'ERR_BALLAST_IMAGE_TOO_LARGE', message: expect.stringMatching(/^AVIF output of 100×200 px/) });
    const frames = await Promise.all(
      [0, 1, 2].map((i) =>
        sharp({ create: { width: 40, height: 40, channels: 3, background: { r: i * 80, g: 0, b: 0 } } })
          .png()
          .toBuffer(),
      ),
    );
    const animated = await sharp(frames, { join: { animated: true } })
      .webp()
      .toBuffer();
    expect((await resizeImage(animated, parseResizeParams({ format: 'avif', effort: '0' }), tight)).width).toBe(40);
    await expect(resizeImage(animated, parseResizeParams({ format: 'avif', animated: 'true', effort: '0' }), tight)).rejects.toMatchObject({
      message: expect.stringMatching(/^AVIF output of 40×40 px × 3 frames/),
    });
  });

  it('holds every format to maxOutputPixels, sized the same way', async () => {
    const thin = await sharp({ create: { width: 1, height: 400, channels: 3, background: 'white' } })
      .png()
      .toBuffer();
    // Width alone: the height follows the input's aspect ratio, 100×40000.
    await expect(
      resizeImage(thin, parseResizeParams({ format: 'png', width: 100 }), resolveLimits({ maxOutputPixels: 1_000_000 })),
    ).rejects.toMatchObject({
      code: 'ERR_BALLAST_IMAGE_TOO_LARGE',
      message: 'output of 100×40000 px exceeds the limit of 1000000 px',
    });
    expect((await resizeImage(thin, parseResizeParams({ format: 'png', width: 2 }), limits)).height).toBe(800);
  });

  it('is answered as a stored failure by the worker', async () => {
    const queue = new InProcessQueue();
    const worker = new ResizeWorker({ queue, concurrency: 1, limits: { maxAvifOutputPixels: 100 } }).start();
    try {
      const id = await queue.enqueue({ data: jpeg, params: { resize: { format: 'avif', width: 20 } }, deadlineAt: Date.now() + 10_000 });
      expect(await queue.wait(id)).toMatchObject({ status: 'failed', error: { code: 'ERR_BALLAST_IMAGE_TOO_LARGE' } });
    } finally {
      await worker.close();
      await queue.close();
    }
  });
});

describe('resizeImage timeout', () => {
  it('stops a conversion that runs too long, and frees the cores', async () => {
    const noisy = await sampleJpeg({ width: 2000, height: 2000 });
    const error = await resizeImage(
      noisy,
      parseResizeParams({ width: 6000, height: 6000, format: 'webp', effort: '6' }),
      resolveLimits({ timeoutMs: 1000 }),
    ).catch((e) => e);
    expect(error).toMatchObject({ code: 'ERR_BALLAST_IMAGE_TIMEOUT' });
    // Stopped by libvips, not merely abandoned (the whole encode takes about ten seconds),
    // and nothing of it left running on the cores.
    expect(await error.stopped).toBe('stopped');
    expect(sharp.counters()).toMatchObject({ queue: 0, process: 0 });
  });
});

describe('conversionTimeoutMs', () => {
  const now = () => 1_000_000;
  it('runs a conversion until its job’s deadline, never over the configured ceiling', () => {
    expect(conversionTimeoutMs({ timeoutMs: 30_000 })).toBe(30_000);
    expect(conversionTimeoutMs({ timeoutMs: 30_000 }, { deadlineAt: 1_004_500, now })).toBe(4500);
    expect(conversionTimeoutMs({ timeoutMs: 30_000 }, { deadlineAt: 1_060_000, now })).toBe(30_000);
    expect(conversionTimeoutMs({ timeoutMs: 30_000 }, { deadlineAt: 999_000, now })).toBe(0);
  });

  it('refuses a conversion whose deadline has passed before it starts', async () => {
    const error = await resizeImage(jpeg, parseResizeParams({ width: 10 }), limits, { deadlineAt: 1, now }).catch((e) => e);
    expect(error).toMatchObject({ code: 'ERR_BALLAST_DEADLINE', message: 'the job’s deadline passed before its conversion started' });
  });
});

describe('CpuMeter', () => {
  it('shares CPU between overlapping jobs', () => {
    let cpu = 0;
    const meter = new CpuMeter(() => cpu);
    const a = meter.begin();
    cpu += 10; // a alone
    const b = meter.begin();
    cpu += 20; // a and b
    expect(meter.end(a)).toBe(20);
    cpu += 5; // b alone
    expect(meter.end(b)).toBe(15);
  });
});

describe('ResizeWorker', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  });

  it('converts jobs, reports usage, stores failures and keeps going', async () => {
    const queue = new InProcessQueue();
    const worker = new ResizeWorker({ queue, name: 'w', concurrency: 2 }).start();
    open.push(queue, worker);
    const usage: JobUsage[] = [];
    worker.events.on('done', (u) => usage.push(u));
    const deadlineAt = Date.now() + 10_000;
    const bad = await queue.enqueue({ data: Buffer.from('nope'), params: { resize: { width: 10 } }, deadlineAt });
    const good = await queue.enqueue({ data: jpeg, params: { resize: { width: 40, format: 'png' }, tenant: 't1' }, deadlineAt });
    const invalid = await queue.enqueue({ data: jpeg, params: { resize: { width: -1 } }, deadlineAt });
    expect(await queue.wait(bad)).toMatchObject({ status: 'failed', error: { code: 'ERR_BALLAST_IMAGE_UNSUPPORTED' } });
    expect(await queue.wait(invalid)).toMatchObject({ status: 'failed', error: { code: 'ERR_BALLAST_INVALID_OPTION' } });
    const result = await queue.wait(good);
    expect(result.status).toBe('done');
    if (result.status !== 'done') return;
    expect((await sharp(result.data).metadata()).format).toBe('png');
    expect(result.meta).toMatchObject({ width: 40, height: 30, bytesIn: jpeg.length, tenant: 't1', attempt: 1 });
    expect(usage).toHaveLength(1);
    expect(usage[0]?.wallMs).toBeGreaterThan(0);
    expect(usage[0]?.cpuMs).toBeGreaterThanOrEqual(0);
    expect(usage[0]?.bytesOut).toBe(result.data.length);
    expect(worker.stats()).toMatchObject({ done: 1, failed: 2, active: 0 });
  });

  // CPU-bound (an AVIF encode runs to its end): seconds on a quiet machine, many more on a loaded one.
  it('keeps a slot taken until a timed-out AVIF encode has really stopped', { timeout: 90_000 }, async () => {
    const queue = new InProcessQueue();
    const started: string[] = [];
    const worker = new ResizeWorker({
      queue,
      concurrency: 1,
      limits: { timeoutMs: 50 },
      beforeConvert: (job) => {
        started.push(job.id);
      },
    }).start();
    open.push(queue, worker);
    const noisy = await sampleJpeg({ width: 500, height: 500 });
    const deadlineAt = Date.now() + 30_000;
    const slow = await queue.enqueue({ data: noisy, params: { resize: { format: 'avif', effort: 4 } }, deadlineAt });
    // The next job is refused by its first bytes, before any conversion: under the 50 ms
    // limit even a small one can time out on a loaded machine.
    const next = await queue.enqueue({ data: Buffer.from('not an image'), params: { resize: { width: 8 } }, deadlineAt });
    expect(await queue.wait(slow)).toMatchObject({ status: 'failed', error: { code: 'ERR_BALLAST_IMAGE_TIMEOUT' } });
    // The AVIF encoder cannot be interrupted: its failure is stored at once, but the
    // next job waits for the encoder to finish instead of running beside it.
    expect(started).toEqual([slow]);
    expect(worker.stats().active).toBe(1);
    expect(await queue.wait(next)).toMatchObject({ status: 'failed', error: { code: 'ERR_BALLAST_IMAGE_UNSUPPORTED' } });
    expect(started).toEqual([slow, next]);
  });

  it('stops a pathological conversion at its job’s deadline and frees the slot for the next job', { timeout: 90_000 }, async () => {
    const queue = new InProcessQueue();
    const worker = new ResizeWorker({ queue, concurrency: 1 }).start();
    open.push(queue, worker);
    // A 36 MP WebP at the top effort from a noisy input: about ten seconds of one core,
    // within every size limit. Its client waits one second.
    const noisy = await sampleJpeg({ width: 2000, height: 2000 });
    const params = { resize: { width: 6000, height: 6000, format: 'webp', effort: 6 } };
    const slow = await queue.enqueue({ data: noisy, params, deadlineAt: Date.now() + 1000 });
    const next = await queue.enqueue({ data: jpeg, params: { resize: { width: 8 } }, deadlineAt: Date.now() + 60_000 });
    expect(await queue.wait(slow)).toMatchObject({
      status: 'failed',
      error: {
        code: 'ERR_BALLAST_DEADLINE',
        message: expect.stringMatching(/^conversion ran past the job's deadline \(\d+ ms left when it started\) and was stopped$/),
      },
    });
    expect((await queue.wait(next)).status).toBe('done');
    await eventually(() => expect(worker.stats()).toMatchObject({ done: 1, failed: 1, active: 0 })); // counted after the results are stored
  });

  it('logs each job with the request id it was enqueued with', async () => {
    const queue = new InProcessQueue();
    const worker = new ResizeWorker({ queue, name: 'w', concurrency: 1 }).start();
    open.push(queue, worker);
    const { logger, entries } = memoryLogger();
    logWorker(worker, logger);
    const deadlineAt = Date.now() + 10_000;
    const good = await queue.enqueue({ data: jpeg, params: { resize: { width: 8 }, requestId: 'req-7' }, deadlineAt });
    const bad = await queue.enqueue({ data: Buffer.from('nope'), params: { resize: {}, requestId: 'req-8' }, deadlineAt });
    await queue.wait(good);
    await queue.wait(bad);
    await eventually(() => expect(entries).toHaveLength(2)); // events follow the stored results
    expect(entries).toEqual([
      expect.objectContaining({ level: 'info', service: 'worker', msg: 'job done', requestId: 'req-7', jobId: good }),
      expect.objectContaining({ level: 'info', service: 'worker', requestId: 'req-8', jobId: bad, code: 'ERR_BALLAST_IMAGE_UNSUPPORTED' }),
    ]);
  });

  it('finishes the job in progress when closed', async () => {
    const queue = new InProcessQueue();
    open.push(queue);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const inProgress = new Promise<void>((r) => (started = r));
    const worker = new ResizeWorker({
      queue,
      concurrency: 1,
      beforeConvert: async () => {
        started();
        await gate;
      },
    }).start();
    const id = await queue.enqueue({ data: jpeg, params: { resize: { width: 10 } }, deadlineAt: Date.now() + 10_000 });
    await inProgress;
    const closing = worker.close();
    release();
    await closing;
    expect((await queue.result(id))?.status).toBe('done');
  });
});

describe('ResizeWorker lifecycle', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  it('leaves no timer behind after close', async () => {
    vi.useFakeTimers();
    const queue = new InProcessQueue();
    const worker = new ResizeWorker({ queue, concurrency: 2 }).start();
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await worker.close();
    await queue.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
