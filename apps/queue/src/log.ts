/** One structured log entry: `level`, `service`, `msg`, and a `requestId` wherever a request is involved. */
export type LogEntry = Record<string, unknown> & { level: LogLevel; service: string };

/** Severity of a {@link LogEntry}. */
export type LogLevel = 'info' | 'warn' | 'error';

/** Where the services send their log entries. */
export type LogSink = (entry: LogEntry) => void;

const RANK: Readonly<Record<LogLevel, number>> = { info: 0, warn: 1, error: 2 };

/**
 * The services' default log: one JSON line per entry on stderr, with the time, for
 * entries at `level` or above. `BALLAST_LOG_LEVEL=info` adds one line per request and
 * per job, each carrying the request id the gateway assigned, so one request can be
 * followed from the gateway through an API server to the worker that converted it.
 * @param level lowest level written. @default process.env.BALLAST_LOG_LEVEL, else 'warn'
 */
export function jsonLines(level: string | undefined = process.env.BALLAST_LOG_LEVEL): LogSink {
  const min = RANK[(level ?? 'warn') as LogLevel] ?? RANK.warn;
  return (entry) => {
    if ((RANK[entry.level] ?? RANK.error) < min) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
  };
}
