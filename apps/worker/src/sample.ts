import sharp from 'sharp';

/** Options of {@link sampleJpeg}. */
export interface SampleJpegOptions {
  /** @default 1600 */
  width?: number;
  /** @default 1200 */
  height?: number;
  /** JPEG quality. @default 80 */
  quality?: number;
}

/**
 * A photo-like JPEG made on the spot (blurred noise: it compresses like a photograph,
 * not like a flat colour). The defaults give a 1600×1200 image of about 260 KB, the
 * reference input of the system benchmark; no binary fixture is needed.
 */
export async function sampleJpeg(options: SampleJpegOptions = {}): Promise<Buffer> {
  const { width = 1600, height = 1200, quality = 80 } = options;
  return await sharp({ create: { width, height, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 40 }, background: 'black' } })
    .blur(1.5)
    .jpeg({ quality })
    .toBuffer();
}
