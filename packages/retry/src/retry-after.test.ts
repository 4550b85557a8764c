import { afterEach, describe, expect, it } from 'vitest';
import { defaultDelayHint, delayFromHeaders, parseRetryAfter } from './retry-after.ts';

const NOW = Date.parse('2026-01-01T00:00:00.000Z');

describe('parseRetryAfter', () => {
  it.each([
    ['120', 120_000],
    [' 0 ', 0],
    ['Thu, 01 Jan 2026 00:00:30 GMT', 30_000],
    ['Wed, 31 Dec 2025 23:59:00 GMT', 0],
    ['soon', undefined],
    ['-5', undefined],
    [null, undefined],
  ])('%s -> %s ms', (value, expected) => {
    expect(parseRetryAfter(value, NOW)).toBe(expected);
  });
});

describe('parseRetryAfter, whatever the local time zone', () => {
  const tz = process.env.TZ;
  afterEach(() => {
    if (tz === undefined) delete process.env.TZ;
    else process.env.TZ = tz;
  });

  it.each(['Asia/Tokyo', 'America/New_York', 'UTC'])('reads all three HTTP date forms as GMT in %s', (zone) => {
    process.env.TZ = zone;
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', NOW)).toBe(30_000); // IMF-fixdate
    expect(parseRetryAfter('Thursday, 01-Jan-26 00:00:30 GMT', NOW)).toBe(30_000); // RFC 850
    expect(parseRetryAfter('Thu Jan  1 00:00:30 2026', NOW)).toBe(30_000); // asctime: no zone, GMT all the same
  });
});

describe('delayFromHeaders', () => {
  it('prefers Retry-After', () => {
    expect(delayFromHeaders(new Headers({ 'retry-after': '2', 'ratelimit-reset': '9' }), 429, NOW)).toBe(2_000);
  });

  it('reads RateLimit-Reset on a 429 or when nothing remains', () => {
    expect(delayFromHeaders(new Headers({ 'ratelimit-reset': '7' }), 429, NOW)).toBe(7_000);
    expect(delayFromHeaders(new Headers({ 'ratelimit-reset': '7', 'ratelimit-remaining': '0' }), 503, NOW)).toBe(7_000);
    expect(delayFromHeaders(new Headers({ 'ratelimit-reset': '7', 'ratelimit-remaining': '3' }), 503, NOW)).toBeUndefined();
  });

  it('reads the structured RateLimit field (t= and reset=)', () => {
    expect(delayFromHeaders(new Headers({ ratelimit: '"default";r=0;t=12' }), 503, NOW)).toBe(12_000);
    expect(delayFromHeaders({ ratelimit: 'limit=100, remaining=0, reset=4' }, 503, NOW)).toBe(4_000);
  });

  it('reads plain header records, as Node gives them', () => {
    expect(delayFromHeaders({ 'retry-after': ['3'] }, 503, NOW)).toBe(3_000);
    expect(delayFromHeaders({}, 503, NOW)).toBeUndefined();
  });
});

describe('defaultDelayHint', () => {
  it('reads responses, error.retryAfterMs and error.response', () => {
    const res = { status: 503, headers: new Headers({ 'retry-after': '1' }) };
    expect(defaultDelayHint({ ok: true, value: res, attempt: 1 })).toBe(1_000);
    expect(defaultDelayHint({ ok: false, error: Object.assign(new Error('x'), { retryAfterMs: 42 }), attempt: 1 })).toBe(42);
    expect(defaultDelayHint({ ok: false, error: Object.assign(new Error('x'), { response: res }), attempt: 1 })).toBe(1_000);
    expect(defaultDelayHint({ ok: false, error: new Error('x'), attempt: 1 })).toBeUndefined();
    expect(defaultDelayHint({ ok: true, value: 42, attempt: 1 })).toBeUndefined();
  });
});
