/**
 * CPU cost of the expensive encoders at their top allowed effort, on one libvips thread
 * (as a worker runs them), for photo-like outputs of 1, 2 and 4 MP. The figures behind
 * the `maxAvifOutputPixels` default.
 *
 *   npx node --conditions=@ballast/source apps/worker/scripts/encoder-cost.ts
 */

import { MAX_EFFORT } from '@ballast/app-queue';
import sharp from 'sharp';
import { processCpuMs } from '../src/cpu-meter.ts';
import { sampleJpeg } from '../src/sample.ts';

sharp.concurrency(1);
sharp.cache(false);

for (const format of ['avif', 'webp'] as const) {
  const effort = MAX_EFFORT[format];
  for (const megapixels of [1, 2, 4]) {
    const height = Math.round(Math.sqrt((megapixels * 1e6 * 3) / 4));
    const width = Math.round((height * 4) / 3);
    const input = await sampleJpeg({ width, height });
    const cpu = processCpuMs();
    const started = performance.now();
    const out = await sharp(input)[format]({ quality: 80, effort }).toBuffer();
    const cpuMs = processCpuMs() - cpu;
    const wallMs = performance.now() - started;
    console.log(
      `${format} effort ${effort}  ${width}×${height} (${((width * height) / 1e6).toFixed(2)} MP)  cpu ${cpuMs.toFixed(0)} ms  wall ${wallMs.toFixed(0)} ms  ${out.length} bytes`,
    );
  }
}
