import { STAGES, type Stage } from '@ballast/app-shared';
import type { Timeline } from './front-door.ts';

/** One log line of the services (pino JSON): what {@link traceFromLogs} reads. */
export type LogLine = Record<string, unknown>;

/** A request's path reconstructed from the services' logs. */
export interface LogTrace extends Partial<Omit<Timeline, 'stages'>> {
  requestId: string;
  /** The request's log lines, by time: gateway, API server, worker. */
  lines: LogLine[];
  stages: Timeline['stages'];
}

const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
const record = (value: unknown): Record<string, unknown> =>
  value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};

/**
 * Rebuilds one request's timeline from the JSON log lines of every service (any order,
 * any mix of services and requests): the lines that carry `requestId`, by time, and the
 * time spent in each stage. Stages come from the gateway's request line when it carries
 * them; otherwise from the API server's line (`stages`), the worker's `job done` line
 * (`queuedMs`, `wallMs`) and the difference between the gateway's and the API's `ms`.
 */
export function traceFromLogs(requestId: string, lines: Iterable<LogLine>): LogTrace {
  const mine = [...lines].filter((l) => l.requestId === requestId).sort((a, b) => String(a.time ?? '').localeCompare(String(b.time ?? '')));
  const gateway = mine.find((l) => l.service === 'gateway' && l.msg === 'request');
  const api = mine.find((l) => typeof l.service === 'string' && l.service !== 'gateway' && l.msg === 'request' && 'mode' in l);
  const job = mine.find((l) => l.msg === 'job done' || l.msg === 'job failed');
  const known: Partial<Record<Stage, number>> = {};
  const fromGateway = record(gateway?.stages);
  const fromApi = record(api?.stages);
  for (const stage of STAGES) {
    const value = num(fromGateway[stage]) ?? num(fromApi[stage]);
    if (value !== undefined) known[stage] = value;
  }
  known.queue_wait ??= num(job?.queuedMs);
  known.conversion ??= num(job?.wallMs);
  const gatewayMs = num(gateway?.ms);
  const apiMs = num(api?.ms);
  if (known.gateway === undefined && gatewayMs !== undefined)
    known.gateway = apiMs === undefined ? gatewayMs : Math.max(0, gatewayMs - apiMs);
  const stages: Timeline['stages'] = [];
  let startMs = 0;
  for (const stage of STAGES) {
    const ms = known[stage];
    if (ms === undefined) continue;
    stages.push({ stage, startMs: Math.round(startMs * 100) / 100, durationMs: ms });
    startMs += ms;
  }
  const trace: LogTrace = { requestId, lines: mine, stages };
  const first = gateway ?? api;
  if (first) {
    if (typeof first.time === 'string') trace.at = first.time;
    if (typeof first.method === 'string') trace.method = first.method;
    if (typeof first.path === 'string') trace.path = first.path;
    if (typeof first.status === 'number') trace.status = first.status;
  }
  const total = gatewayMs ?? apiMs;
  if (total !== undefined) trace.totalMs = total;
  const tenant = api?.tenant ?? gateway?.tenant ?? job?.tenant;
  if (typeof tenant === 'string') trace.tenant = tenant;
  const upstream = gateway?.upstream ?? api?.service;
  if (typeof upstream === 'string') trace.upstream = upstream;
  return trace;
}

/** A request's timeline as text: a header, one bar per stage, then the log lines. */
export function renderTrace(trace: LogTrace | Timeline, width = 40): string {
  const out: string[] = [];
  const what = [trace.method, trace.path].filter(Boolean).join(' ');
  const status = trace.status === undefined ? '' : ` → ${trace.status}${trace.outcome ? ` ${trace.outcome}` : ''}`;
  out.push(`request ${trace.requestId}${what ? ` ${what}` : ''}${status}`);
  const facts = [
    trace.at && `at ${trace.at}`,
    trace.tenant && `tenant ${trace.tenant}`,
    trace.upstream && `upstream ${trace.upstream}`,
    trace.totalMs !== undefined && `total ${trace.totalMs.toFixed(1)} ms`,
  ].filter(Boolean);
  if (facts.length) out.push(`  ${facts.join(' · ')}`);
  const end = Math.max(trace.totalMs ?? 0, ...trace.stages.map((s) => s.startMs + s.durationMs), 1);
  for (const s of trace.stages) {
    const from = Math.round((s.startMs / end) * width);
    const length = Math.max(1, Math.round((s.durationMs / end) * width));
    const bar = `${' '.repeat(Math.min(from, width))}${'█'.repeat(Math.min(length, width + 1 - Math.min(from, width)))}`;
    out.push(
      `  ${s.stage.padEnd(11)} ${s.startMs.toFixed(1).padStart(8)} ms  +${s.durationMs.toFixed(1).padStart(8)} ms  |${bar.padEnd(width + 1)}|`,
    );
  }
  if (trace.stages.length === 0) out.push('  (no stage timings found)');
  if ('lines' in trace && trace.lines.length > 0) {
    out.push('  log lines:');
    for (const line of trace.lines) {
      const { time, level, service, msg, requestId: _id, ...rest } = line;
      out.push(
        `    ${String(time ?? '')} ${String(level ?? '').padEnd(5)} ${String(service ?? '').padEnd(8)} ${String(msg ?? '')} ${JSON.stringify(rest)}`,
      );
    }
  }
  return out.join('\n');
}
