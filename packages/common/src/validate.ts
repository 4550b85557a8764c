import { InvalidOptionError } from './errors.ts';

/**
 * Option validators. Each returns the value when it is valid and throws an
 * {@link InvalidOptionError} naming the option otherwise, so constructors read as
 * `this.limit = integer('limit', options.limit ?? 10, { min: 1 })`.
 */

/** Bounds for a numeric option; both inclusive. */
export interface NumberBounds {
  min?: number;
  max?: number;
}

/** A finite number within bounds. */
export function finiteNumber(option: string, value: unknown, bounds: NumberBounds = {}): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || outside(value, bounds)) {
    throw new InvalidOptionError(option, `a finite number${range(bounds)}`, value);
  }
  return value;
}

/** An integer within bounds. */
export function integer(option: string, value: unknown, bounds: NumberBounds = {}): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || outside(value, bounds)) {
    throw new InvalidOptionError(option, `an integer${range(bounds)}`, value);
  }
  return value;
}

/** A duration in milliseconds: finite, >= 0 (or >= `min`), at most the timer limit. */
export function durationMs(option: string, value: unknown, bounds: NumberBounds = {}): number {
  return finiteNumber(option, value, { min: bounds.min ?? 0, max: bounds.max ?? MAX_TIMER_MS });
}

/** A probability or share in [0, 1] (or narrower bounds). */
export function ratio(option: string, value: unknown, bounds: NumberBounds = {}): number {
  return finiteNumber(option, value, { min: bounds.min ?? 0, max: bounds.max ?? 1 });
}

/** One of a fixed set of string literals. */
export function oneOf<const T extends string>(option: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new InvalidOptionError(option, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
  }
  return value as T;
}

/** A function. */
export function func<T extends (...args: never[]) => unknown>(option: string, value: unknown): T {
  if (typeof value !== 'function') throw new InvalidOptionError(option, 'a function', value);
  return value as T;
}

/** A boolean (`true` or `false`; nothing truthy or falsy stands in for one). */
export function boolean(option: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidOptionError(option, 'true or false', value);
  return value;
}

/** A non-empty string. */
export function nonEmptyString(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidOptionError(option, 'a non-empty string', value);
  return value;
}

/** The largest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days); longer delays fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

function outside(value: number, { min, max }: NumberBounds): boolean {
  return (min !== undefined && value < min) || (max !== undefined && value > max);
}

function range({ min, max }: NumberBounds): string {
  if (min !== undefined && max !== undefined) return ` between ${min} and ${max}`;
  if (min !== undefined) return ` >= ${min}`;
  if (max !== undefined) return ` <= ${max}`;
  return '';
}
