import { BallastError } from '@ballast/common';

/**
 * One `BALLAST_*` environment variable: what it means, what it accepts (in words, for
 * the error message), how to parse it, and its value when unset.
 */
export interface EnvVar<T> {
  /** What the variable is for. */
  readonly doc: string;
  /** The values accepted, in words: `an integer from 1 to 65535`. */
  readonly accepted: string;
  /** Parses a set value; `undefined` when it is not acceptable. */
  readonly parse: (raw: string) => T | undefined;
  /** The value when unset or empty; `undefined` leaves the choice to the service's own default. */
  readonly fallback?: T;
  /** Unset is an error. */
  readonly required?: boolean;
}

/** Variables by name. */
export type EnvSpec = Readonly<Record<string, EnvVar<unknown>>>;

/** The values of a spec, by variable name; `undefined` where unset and without a fallback. */
export type EnvValues<S extends EnvSpec> = {
  [K in keyof S]: S[K] extends EnvVar<infer T> ? T | (S[K]['required'] extends true ? never : undefined) : never;
};

/** Thrown at startup when a `BALLAST_*` variable is malformed, out of range, missing or a likely typo; the message names each. */
export class ConfigError extends BallastError {
  /** One line per problem: `BALLAST_API_PORT must be an integer from 0 to 65535, got "80a"`. */
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super('ERR_BALLAST_CONFIG', `invalid configuration:\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

/** What {@link readEnv} found besides the values. */
export interface EnvReport {
  /** `BALLAST_*` variables no service knows and that are no likely typo: ignored, worth a warning line. */
  unknown: string[];
}

/**
 * Reads and validates the variables of `spec` from `env`, and checks every other
 * `BALLAST_*` variable against `known` (every variable of every service): one within two
 * edits of a known name is taken for a typo of it and stops startup with the name it
 * probably meant; any other is reported in `report.unknown`.
 *
 * @throws {ConfigError} listing every problem at once.
 */
export function readEnv<S extends EnvSpec>(
  spec: S,
  env: NodeJS.ProcessEnv,
  known: readonly string[],
  report: EnvReport = { unknown: [] },
): EnvValues<S> {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, variable] of Object.entries(spec)) {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') {
      if (variable.required) problems.push(`${name} is required: ${variable.accepted}`);
      values[name] = variable.fallback;
      continue;
    }
    const value = variable.parse(raw);
    if (value === undefined) problems.push(`${name} must be ${variable.accepted}, got ${JSON.stringify(raw)}`);
    values[name] = value;
  }
  for (const name of Object.keys(env)) {
    if (!name.startsWith('BALLAST_') || known.includes(name)) continue;
    const near = nearest(name, known);
    if (near !== undefined) problems.push(`${name} is not a Ballast variable; did you mean ${near}?`);
    else report.unknown.push(name);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return values as EnvValues<S>;
}

/** The known name within two edits of `name`, if any. */
function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(name, candidate, bestDistance);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, giving up (returning `limit`) once it reaches `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
      current.push(value);
      rowMin = Math.min(rowMin, value);
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return Math.min(previous[b.length] as number, limit);
}

/** An integer within `[min, max]`. */
export function intVar(doc: string, bounds: { min: number; max?: number }, fallback?: number): EnvVar<number> {
  const { min, max = Number.MAX_SAFE_INTEGER } = bounds;
  return {
    doc,
    accepted: max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
    parse: (raw) => {
      if (!/^-?\d+$/.test(raw)) return undefined;
      const n = Number(raw);
      return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
    },
    fallback,
  };
}

/** A TCP port, 0 (a free one) to 65535. */
export function portVar(doc: string, fallback?: number): EnvVar<number> {
  return { ...intVar(doc, { min: 0, max: 65535 }, fallback), accepted: 'a port from 0 (a free one) to 65535' };
}

/** A number within `[min, max]` (decimals allowed). */
export function numberVar(doc: string, bounds: { min: number; max: number }, fallback?: number): EnvVar<number> {
  return {
    doc,
    accepted: `a number from ${bounds.min} to ${bounds.max}`,
    parse: (raw) => {
      if (!/^-?\d+(\.\d+)?$/.test(raw)) return undefined;
      const n = Number(raw);
      return n >= bounds.min && n <= bounds.max ? n : undefined;
    },
    fallback,
  };
}

/** One of a fixed set of words. */
export function enumVar<const T extends string>(doc: string, values: readonly T[], fallback?: T): EnvVar<T> {
  return {
    doc,
    accepted: `one of ${values.join(', ')}`,
    parse: (raw) => ((values as readonly string[]).includes(raw) ? (raw as T) : undefined),
    fallback,
  };
}

/** `1`/`true`/`yes` or `0`/`false`/`no`. */
export function boolVar(doc: string, fallback?: boolean): EnvVar<boolean> {
  return {
    doc,
    accepted: 'true or false (also 1/0, yes/no)',
    parse: (raw) => {
      const v = raw.toLowerCase();
      if (v === '1' || v === 'true' || v === 'yes') return true;
      if (v === '0' || v === 'false' || v === 'no') return false;
      return undefined;
    },
    fallback,
  };
}

/** A string matching `pattern` (described by `accepted`). */
export function stringVar(doc: string, accepted: string, pattern: RegExp, fallback?: string): EnvVar<string> {
  return { doc, accepted, parse: (raw) => (pattern.test(raw) ? raw : undefined), fallback };
}

/** A comma-separated list, each item parsed by `item`; empty items are refused. */
export function listVar<T>(doc: string, accepted: string, item: (raw: string) => T | undefined): EnvVar<T[]> {
  return {
    doc,
    accepted,
    parse: (raw) => {
      const items = raw.split(',').map((part) => item(part.trim()));
      return items.every((v) => v !== undefined) ? (items as T[]) : undefined;
    },
  };
}

/** An `http:`/`https:` URL with no path beyond `/`, e.g. `http://127.0.0.1:8081`; trailing slash removed. */
export function httpOrigin(raw: string): string | undefined {
  try {
    const url = new URL(raw);
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search || url.hash) return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/** `host:port` with a port from 1 to 65535. */
export function hostPort(raw: string): { host: string; port: number } | undefined {
  const match = /^(.+):(\d{1,5})$/.exec(raw);
  if (!match) return undefined;
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? { host: match[1] as string, port } : undefined;
}
