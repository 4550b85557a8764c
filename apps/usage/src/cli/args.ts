import { parseArgs } from 'node:util';

/**
 * Parses a command's options; on a bad one prints what was wrong and the usage line, and
 * exits with status 2.
 */
export function commandArgs<const O extends Record<string, { type: 'string' | 'boolean' }>>(
  usage: string,
  options: O,
): ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>>['values'] {
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    fail(usage, (error as Error).message);
  }
}

/** Prints `message` and the usage line to stderr and exits with status 2. */
export function fail(usage: string, message: string): never {
  process.stderr.write(`${message}\nusage: ${usage}\n`);
  process.exit(2);
}

/** Reads configuration with `read`; on a `ConfigError` prints its problems and exits with status 2. */
export function configOrExit<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  }
}
