import { describe, expect, it } from 'vitest';
import { checkKey, displayPrefix, generateKey, hashKey, KEY_LENGTH, KEY_PREFIX, redactKeys } from './key.ts';

describe('API keys', () => {
  it('are blst_ + 30 random base62 characters + a 6-character checksum, and pass their own check', () => {
    const { key, hash, prefix } = generateKey();
    expect(key).toMatch(/^blst_[0-9A-Za-z]{36}$/);
    expect(key).toHaveLength(KEY_LENGTH);
    expect(checkKey(key)).toEqual({ ok: true });
    expect(hash).toBe(hashKey(key));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(prefix).toBe(key.slice(0, 9));
    expect(displayPrefix(key)).toBe(prefix);
  });

  it('are all different (high-entropy bodies), with characters spread over the whole alphabet', () => {
    const keys = new Set(Array.from({ length: 2000 }, () => generateKey().key));
    expect(keys.size).toBe(2000);
    const counts = new Map<string, number>();
    for (const key of keys) for (const ch of key.slice(5, 35)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    const mean = (2000 * 30) / 62;
    for (const n of counts.values()) expect(Math.abs(n - mean)).toBeLessThan(mean * 0.25);
  });

  it('catch every single-character typo and every swap of two neighbours with the checksum', () => {
    const { key } = generateKey();
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    for (let i = KEY_PREFIX.length; i < key.length; i++) {
      for (const ch of [
        alphabet[(alphabet.indexOf(key[i] as string) + 1) % 62],
        alphabet[(alphabet.indexOf(key[i] as string) + 31) % 62],
      ]) {
        const typo = key.slice(0, i) + ch + key.slice(i + 1);
        expect(checkKey(typo)).toMatchObject({ ok: false, problem: 'checksum' });
      }
      if (i + 1 < key.length && key[i] !== key[i + 1]) {
        const swapped = key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2);
        expect(checkKey(swapped).ok).toBe(false);
      }
    }
  });

  it.each([
    ['empty', '', 'empty'],
    ['wrong prefix', `ghp_${'a'.repeat(37)}`, 'prefix'],
    ['upper-case prefix', `BLST_${'a'.repeat(36)}`, 'prefix'],
    ['too short', 'blst_abc', 'length'],
    ['one character too long', `${generateKey().key}x`, 'length'],
    ['huge', `blst_${'a'.repeat(100_000)}`, 'tooLong'],
    ['non-ASCII', `blst_${'é'.repeat(36)}`, 'charset'],
    ['a space inside', `blst_${'a'.repeat(17)} ${'a'.repeat(18)}`, 'charset'],
    ['bad checksum', `blst_${'a'.repeat(30)}000000`, 'checksum'],
  ])('refuse a key that is %s, naming the problem and never quoting the key', (_what, key, problem) => {
    const check = checkKey(key);
    expect(check).toMatchObject({ ok: false, problem });
    if (!check.ok) {
      expect(check.message).not.toContain(key.slice(5, 20) || '\u0000');
      expect(check.message.length).toBeLessThan(120);
    }
  });

  it('redact anything key-like in text down to the display prefix', () => {
    const { key } = generateKey();
    const text = `failed for ${key} and blst_ab`;
    const redacted = redactKeys(text);
    expect(redacted).toBe(`failed for ${key.slice(0, 9)}… and blst_ab…`);
    expect(redacted).not.toContain(key.slice(9));
    expect(redactKeys('nothing here')).toBe('nothing here');
  });
});
