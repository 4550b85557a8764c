import { type InvalidOptionError, isInvalidOptionError } from '@ballast/common';
import { expect } from 'vitest';

/** Runs `build`, expects it to throw an InvalidOptionError naming `option`, and returns the error. */
export function expectInvalidOption(build: () => unknown, option: string): InvalidOptionError {
  let error: unknown;
  try {
    build();
  } catch (e) {
    error = e;
  }
  expect(isInvalidOptionError(error)).toBe(true);
  expect(error).toMatchObject({ option });
  return error as InvalidOptionError;
}
