import { InvalidOptionError } from '@ballast/common';

/**
 * A 32-bit hash of a key. Must return an unsigned 32-bit integer (0 ≤ h < 2^32) and be
 * deterministic: the same key and seed give the same value in every process. `seed`
 * selects an independent hash function of the family (the strategies use it to place
 * virtual nodes and to derive per-node values); it defaults to 0.
 *
 * A string and its UTF-8 bytes should hash alike, as {@link murmur3} does, so that a key
 * given as text and as a `Uint8Array` has the same owner.
 */
export type HashFunction = (key: Uint8Array | string, seed?: number) => number;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

const encoder = new TextEncoder();
let scratch = new Uint8Array(256);
/** The reused buffer grows to this size at most: a huge key once must not pin its bytes for good. */
const MAX_SCRATCH = 64 * 1024;

/**
 * MurmurHash3 x86 32-bit, the default {@link HashFunction}: fast, well distributed and
 * not cryptographic. Strings are hashed as their UTF-8 bytes; ASCII strings are read
 * straight from their char codes with no allocation, other strings are encoded into a
 * reused buffer. Matches the reference implementation for every input.
 *
 * @param key A string (hashed as UTF-8) or bytes.
 * @param seed 32-bit seed. @default 0
 * @returns An unsigned 32-bit integer.
 * @throws {InvalidOptionError} When `key` is neither a string nor a `Uint8Array`.
 * @example
 * ```ts
 * murmur3('hello'); // 613153351
 * murmur3(new TextEncoder().encode('hello')); // same value
 * ```
 */
export function murmur3(key: Uint8Array | string, seed = 0): number {
  if (typeof key === 'string') return murmurString(key, seed);
  if (key instanceof Uint8Array) return murmurBytes(key, key.length, seed);
  throw new InvalidOptionError('key', 'a string or a Uint8Array', key);
}

function murmurString(s: string, seed: number): number {
  const len = s.length;
  const end = len & ~3;
  let h = seed | 0;
  let i = 0;
  for (; i < end; i += 4) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    if ((c0 | c1 | c2 | c3) > 0x7f) return murmurEncoded(s, seed);
    h = mixBlock(h, c0 | (c1 << 8) | (c2 << 16) | (c3 << 24));
  }
  const rest = len & 3;
  if (rest !== 0) {
    let k = 0;
    for (let j = rest - 1; j >= 0; j--) {
      const c = s.charCodeAt(i + j);
      if (c > 0x7f) return murmurEncoded(s, seed);
      k = (k << 8) | c;
    }
    h ^= scramble(k);
  }
  return fmix32(h ^ len);
}

function murmurEncoded(s: string, seed: number): number {
  // A UTF-16 code unit is at most 3 UTF-8 bytes.
  const need = s.length * 3;
  if (need > MAX_SCRATCH) {
    const bytes = encoder.encode(s);
    return murmurBytes(bytes, bytes.length, seed);
  }
  if (scratch.length < need) scratch = new Uint8Array(need);
  const { written } = encoder.encodeInto(s, scratch);
  return murmurBytes(scratch, written, seed);
}

function murmurBytes(bytes: Uint8Array, len: number, seed: number): number {
  const end = len & ~3;
  let h = seed | 0;
  let i = 0;
  for (; i < end; i += 4) h = mixBlock(h, bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
  const rest = len & 3;
  if (rest !== 0) {
    let k = 0;
    for (let j = rest - 1; j >= 0; j--) k = (k << 8) | bytes[i + j]!;
    h ^= scramble(k);
  }
  return fmix32(h ^ len);
}

function scramble(k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, C2);
}

/** One 4-byte block of the body. */
function mixBlock(h: number, k: number): number {
  h ^= scramble(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The MurmurHash3 finaliser: a bijective avalanche of 32 bits. Returns an unsigned 32-bit integer. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Rendezvous scoring in two steps: `keyMix(h)` once per lookup, then `score(mixed, nodeHash)`
 * per node — a well-mixed unsigned 32-bit value, independent across nodes for one key.
 */
export function keyMix(keyHash: number): number {
  return Math.imul(keyHash ^ 0x9e3779b9, C1);
}

/** See {@link keyMix}. */
export function score(mixedKey: number, nodeHash: number): number {
  return fmix32(mixedKey ^ nodeHash);
}
