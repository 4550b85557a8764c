import { isInvalidOptionError } from '@ballast/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fmix32, murmur3 } from './hash.ts';
import { jumpHash } from './jump.ts';

const encoder = new TextEncoder();

describe('murmur3', () => {
  // Published MurmurHash3_x86_32 vectors.
  it.each([
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\0\0\0\0', 0, 0x2362f9de],
    ['a', 0x9747b28c, 0x7fa09ea6],
    ['abc', 0, 0xb3dd93fa],
    ['aaaa', 0x9747b28c, 0x5a97808a],
    ['Hello, world!', 0x9747b28c, 0x24884cba],
    ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
    ['ππππππππ', 0x9747b28c, 0xd58063c1],
  ])('murmur3(%j, %i) matches the reference', (text, seed, expected) => {
    expect(murmur3(text, seed)).toBe(expected);
    expect(murmur3(encoder.encode(text), seed)).toBe(expected);
  });

  it('hashes a string exactly like its UTF-8 bytes, and returns an unsigned 32-bit integer', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.nat(), (text, seed) => {
        const h = murmur3(text, seed);
        expect(h).toBe(murmur3(encoder.encode(text), seed));
        expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it('hashes long non-ASCII strings like their bytes, below and above the reused buffer size', () => {
    for (const length of [100, 21_845, 21_846, 100_000]) {
      const text = 'é😀a'.repeat(Math.ceil(length / 4)).slice(0, length);
      expect(murmur3(text, 7)).toBe(murmur3(encoder.encode(text), 7));
    }
  });

  it('rejects keys that are neither strings nor bytes', () => {
    expect(() => murmur3(42 as unknown as string)).toThrow(/key must be a string or a Uint8Array, got 42/);
    try {
      murmur3({} as unknown as string);
    } catch (error) {
      expect(isInvalidOptionError(error)).toBe(true);
    }
  });

  it('fmix32 is a bijection on a sample (no two inputs collide)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 50_000; i++) seen.add(fmix32(i * 7919));
    expect(seen.size).toBe(50_000);
  });
});

describe('jumpHash', () => {
  /** The reference algorithm with 64-bit integers. */
  function reference(key: bigint, buckets: number): number {
    let b = -1n;
    let j = 0n;
    while (j < BigInt(buckets)) {
      b = j;
      key = (key * 2862933555777941757n + 1n) & 0xffffffffffffffffn;
      j = BigInt(Math.floor(Number(b + 1n) * (2 ** 31 / Number((key >> 33n) + 1n))));
    }
    return Number(b);
  }

  it('matches the 64-bit reference implementation bit for bit', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 100_000 }), (hi, lo, buckets) => {
        expect(jumpHash(hi, lo, buckets)).toBe(reference((BigInt(hi) << 32n) | BigInt(lo), buckets));
      }),
      { numRuns: 2000 },
    );
  });

  it('only ever moves a key to the new bucket when buckets grow', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 500 }), (lo, buckets) => {
        const before = jumpHash(0, lo, buckets);
        const after = jumpHash(0, lo, buckets + 1);
        expect(after === before || after === buckets).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
