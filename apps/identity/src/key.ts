/**
 * API keys: `blst_` + 30 random base62 characters (178 bits) + a 6-character base62
 * CRC32 of everything before it, as GitHub's tokens carry one. A mistyped or made-up key
 * fails the checksum and is refused without any lookup; only the key's SHA-256 is ever
 * stored, and only its display prefix (`blst_` + 4 characters) is ever shown again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/** Every key starts with this. */
export const KEY_PREFIX = 'blst_';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BODY_LENGTH = 30;
const CHECKSUM_LENGTH = 6;
/** Length of every key, characters. */
export const KEY_LENGTH: number = KEY_PREFIX.length + BODY_LENGTH + CHECKSUM_LENGTH;
/** Characters of a key that may be shown again (`blst_` + 4): about 24 bits, useless to an attacker. */
export const DISPLAY_PREFIX_LENGTH: number = KEY_PREFIX.length + 4;
const BASE62 = /^[0-9A-Za-z]+$/;

/** Why a presented key was refused before any lookup. */
export type KeyShapeProblem = 'empty' | 'tooLong' | 'prefix' | 'length' | 'charset' | 'checksum';

/** The outcome of {@link checkKey}. */
export type KeyCheck = { readonly ok: true } | { readonly ok: false; readonly problem: KeyShapeProblem; readonly message: string };

const OK: KeyCheck = Object.freeze({ ok: true });
const MESSAGES: Readonly<Record<KeyShapeProblem, string>> = {
  empty: 'the API key is empty',
  tooLong: `the API key is far longer than the ${KEY_LENGTH} characters of a Ballast key`,
  prefix: `the API key does not start with ${KEY_PREFIX}`,
  length: `the API key does not have the ${KEY_LENGTH} characters of a Ballast key`,
  charset: 'the API key has characters other than letters and digits after its prefix',
  checksum: 'the API key fails its checksum (mistyped or truncated?)',
};
const REFUSALS = Object.fromEntries(
  Object.entries(MESSAGES).map(([problem, message]) => [problem, Object.freeze({ ok: false, problem, message })]),
) as Record<KeyShapeProblem, KeyCheck>;

/**
 * Checks a presented key's shape and checksum, touching no store. The message names
 * what is wrong and never contains the key.
 */
export function checkKey(key: string): KeyCheck {
  if (key.length === 0) return REFUSALS.empty;
  if (key.length > 4 * KEY_LENGTH) return REFUSALS.tooLong;
  if (!key.startsWith(KEY_PREFIX)) return REFUSALS.prefix;
  if (key.length !== KEY_LENGTH) return REFUSALS.length;
  const rest = key.slice(KEY_PREFIX.length);
  if (!BASE62.test(rest)) return REFUSALS.charset;
  const body = key.slice(0, KEY_LENGTH - CHECKSUM_LENGTH);
  if (checksum(body) !== key.slice(KEY_LENGTH - CHECKSUM_LENGTH)) return REFUSALS.checksum;
  return OK;
}

/** A freshly generated key: the key itself (show it once), its hash (store it) and its display prefix. */
export interface GeneratedKey {
  readonly key: string;
  readonly hash: string;
  readonly prefix: string;
}

/** Generates a key with 178 bits of randomness and its checksum. */
export function generateKey(): GeneratedKey {
  const body = KEY_PREFIX + randomBase62(BODY_LENGTH);
  const key = body + checksum(body);
  return { key, hash: hashKey(key), prefix: displayPrefix(key) };
}

/** SHA-256 of a key, hex: what the store and the edge caches hold. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** The part of a key that may be shown: `blst_` and the next 4 characters. */
export function displayPrefix(key: string): string {
  return key.slice(0, DISPLAY_PREFIX_LENGTH);
}

/** Random base62 characters without modulo bias (bytes ≥ 248 are drawn again). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function checksum(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

const KEY_LIKE = /blst_([0-9A-Za-z]{0,4})[0-9A-Za-z]*/g;

/** `text` with anything that looks like a key cut down to its display prefix, for logs and messages. */
export function redactKeys(text: string): string {
  return text.includes(KEY_PREFIX) ? text.replace(KEY_LIKE, `${KEY_PREFIX}$1…`) : text;
}
