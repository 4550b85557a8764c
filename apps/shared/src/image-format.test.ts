import { describe, expect, it } from 'vitest';
import { sniffImageFormat, unsupportedInput } from './image-format.ts';

const bytes = (...values: Array<number | string>): Uint8Array =>
  Buffer.concat(values.map((v) => (typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from([v]))));

describe('sniffImageFormat', () => {
  it.each([
    ['jpeg', bytes(0xff, 0xd8, 0xff, 0xe0, 0, 0x10)],
    ['png', bytes(0x89, 'PNG\r\n', 0x1a, '\n', 0, 0, 0, 13)],
    ['gif', bytes('GIF89a', 1, 0)],
    ['webp', bytes('RIFF', 0, 0, 0, 0, 'WEBPVP8 ')],
    ['tiff', bytes('II*', 0, 8, 0)],
    ['tiff', bytes('MM', 0, '*', 0, 0)],
    ['avif', bytes(0, 0, 0, 0x1c, 'ftypavif', 0, 0, 0, 0, 'avifmif1miaf')],
    ['avif', bytes(0, 0, 0, 0x1c, 'ftypmif1', 0, 0, 0, 0, 'mif1avifmiaf')],
    ['svg', bytes('  <?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>')],
    ['svg', bytes('<svg width="10" height="10"></svg>')],
  ])('knows %s by its first bytes', (format, data) => {
    expect(sniffImageFormat(data)).toBe(format);
  });

  it.each([
    ['text', bytes('plain text, not an image')],
    ['HEIC', bytes(0, 0, 0, 0x18, 'ftypheic', 0, 0, 0, 0, 'mif1heic')],
    ['PDF', bytes('%PDF-1.7\n')],
    ['HTML', bytes('<html><body>hi</body></html>')],
    ['nothing', bytes()],
    ['a JPEG cut to two bytes', bytes(0xff, 0xd8)],
  ])('knows %s is none of them', (_name, data) => {
    expect(sniffImageFormat(data)).toBeUndefined();
  });

  it('names what is accepted', () => {
    expect(unsupportedInput(['jpeg', 'webp'])).toBe('input is not an image in an accepted format (JPEG, WebP)');
  });
});
