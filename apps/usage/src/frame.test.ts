import { describe, expect, it } from 'vitest';
import { decodeFrames, encodeFrame, FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from './frame.ts';

const payload = (n: number): Buffer => Buffer.from(JSON.stringify({ n, pad: 'x'.repeat(n % 50) }));

describe('frames', () => {
  it('round-trips a run of frames', () => {
    const frames = Array.from({ length: 20 }, (_, i) => encodeFrame(payload(i)));
    const buffer = Buffer.concat(frames);
    const { payloads, validBytes, ends } = decodeFrames(buffer);
    expect(payloads.map((p) => JSON.parse(p.toString()).n)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(validBytes).toBe(buffer.byteLength);
    expect(ends.at(-1)).toBe(buffer.byteLength);
  });

  it('stops at a tail cut at every possible byte', () => {
    const whole = Buffer.concat([encodeFrame(payload(1)), encodeFrame(payload(2))]);
    const first = encodeFrame(payload(1)).byteLength;
    for (let cut = 0; cut < whole.byteLength; cut++) {
      const { payloads, validBytes } = decodeFrames(whole.subarray(0, cut));
      expect(validBytes).toBe(cut >= first ? first : 0);
      expect(payloads.length).toBe(cut >= first ? 1 : 0);
    }
  });

  it('stops at a flipped bit anywhere in a frame, length and checksum included', () => {
    const good = encodeFrame(payload(1));
    const bad = encodeFrame(payload(2));
    for (let byte = 0; byte < bad.byteLength; byte++) {
      const damaged = Buffer.from(bad);
      damaged[byte] = (damaged[byte] as number) ^ 0x10;
      const { payloads, validBytes } = decodeFrames(Buffer.concat([good, damaged, encodeFrame(payload(3))]));
      expect(payloads.length).toBe(1);
      expect(validBytes).toBe(good.byteLength);
    }
  });

  it('treats zero-filled space (a file extended but not written) as the end', () => {
    const buffer = Buffer.concat([encodeFrame(payload(1)), Buffer.alloc(64)]);
    expect(decodeFrames(buffer).validBytes).toBe(buffer.byteLength - 64);
  });

  it('refuses empty and oversized payloads', () => {
    expect(() => encodeFrame(Buffer.alloc(0))).toThrow(/1 to 65536 bytes, got 0/);
    expect(() => encodeFrame(Buffer.alloc(MAX_FRAME_BYTES + 1))).toThrow(RangeError);
    expect(encodeFrame(Buffer.alloc(MAX_FRAME_BYTES, 1)).byteLength).toBe(MAX_FRAME_BYTES + FRAME_HEADER_BYTES);
  });
});
