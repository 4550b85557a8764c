import { describe, expect, it } from 'vitest';
import { errorBody, retryAfterSeconds } from './http.ts';

describe('retryAfterSeconds', () => {
  it.each([
    [0, 1],
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [29_500, 30],
    [-5, 1],
    [Number.NaN, 1],
    [Number.POSITIVE_INFINITY, 1],
  ])('%s ms -> %s s', (ms, seconds) => {
    expect(retryAfterSeconds(ms)).toBe(seconds);
    expect(Number.isInteger(retryAfterSeconds(ms))).toBe(true);
  });
});

describe('errorBody', () => {
  it('has one shape, details beside code and message, which details cannot overwrite', () => {
    expect(errorBody('ERR_X', 'went wrong')).toEqual({ error: { code: 'ERR_X', message: 'went wrong' } });
    expect(errorBody('ERR_X', 'went wrong', { reason: 'queueFull', code: 'forged' })).toEqual({
      error: { reason: 'queueFull', code: 'ERR_X', message: 'went wrong' },
    });
  });
});
