import { pino } from 'pino';

/** A structured logger (pino's). Services take one and log through `logger.child({ service })`. */
export type Logger = pino.Logger;

/** Log levels `BALLAST_LOG_LEVEL` accepts, most verbose first; `silent` writes nothing. */
export const LOG_LEVELS: readonly ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] = [
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
];

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** One log line as written: `time` (ISO 8601), `level` (its name), `service`, `msg`, and the entry's own fields. */
export type LogRecord = Record<string, unknown> & { time: string; level: string; msg?: string; service?: string; requestId?: string };

/**
 * Fields never written as they are: credentials a log line could pick up from a request
 * (its `authorization`, `cookie` or `x-api-key` header, an API key, a password or token),
 * at the top level or one level down (`headers.authorization`, `req.apiKey`). Their values
 * are replaced by `[redacted]`.
 */
export const REDACTED_PATHS: readonly string[] = [
  'authorization',
  'cookie',
  '["x-api-key"]',
  '["set-cookie"]',
  'apiKey',
  'api_key',
  'key',
  'password',
  'secret',
  'token',
  '*.authorization',
  '*.cookie',
  '*["x-api-key"]',
  '*["set-cookie"]',
  '*.apiKey',
  '*.api_key',
  '*.key',
  '*.password',
  '*.secret',
  '*.token',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["x-api-key"]',
];

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Lowest level written. @default 'warn' */
  level?: LogLevel;
  /** Where the JSON lines go. @default stderr, written synchronously (a crash loses no line) */
  destination?: pino.DestinationStream;
}

/**
 * The services' logger: one JSON line per entry (`time`, `level`, `service`, `msg`, then
 * the entry's fields), on stderr by default. Each service logs through a child carrying
 * `service`, each request through a child of that carrying `requestId` (see the
 * `requestLogger` middleware), so every line of a request names it.
 */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'warn',
      base: undefined,
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ dest: 2, sync: true }),
  );
}

/**
 * A logger that keeps its lines in memory, parsed (for tests and for tools that read a
 * service's log): `entries` grows as the services log.
 */
export function memoryLogger(level: LogLevel = 'info'): { logger: Logger; entries: LogRecord[] } {
  const entries: LogRecord[] = [];
  const logger = createLogger({ level, destination: { write: (line: string) => void entries.push(JSON.parse(line) as LogRecord) } });
  return { logger, entries };
}

/** A logger that writes nothing. */
export function silentLogger(): Logger {
  return createLogger({ level: 'silent' });
}
