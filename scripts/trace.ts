/**
 * `npm run trace -- <request id> [log files…]`: one request's path through the system —
 * the time it spent in each stage (gateway, API admission, enqueue, queue wait,
 * conversion, response) and its log lines from every service — rebuilt from the
 * services' JSON logs (the files given, or standard input), or asked of a running
 * gateway's operational listener:
 *
 *   BALLAST_LOG_LEVEL=info npm start 2> ballast.log     # then, with an id from x-request-id:
 *   npm run trace -- 9f1c0c6e-… ballast.log
 *   npm run trace -- 9f1c0c6e-… --from http://127.0.0.1:9464
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { renderTrace, type Timeline, traceFromLogs } from '@ballast/app-gateway';

const args = process.argv.slice(2);
const fromIndex = args.indexOf('--from');
const from = fromIndex >= 0 ? args[fromIndex + 1] : undefined;
const rest = args.filter((_, i) => fromIndex < 0 || (i !== fromIndex && i !== fromIndex + 1));
const [requestId, ...files] = rest;
if (!requestId || requestId.startsWith('-') || (fromIndex >= 0 && !from)) {
  console.error('usage: npm run trace -- <request id> [log files…]   (or: <request id> --from http://<gateway ops address>)');
  process.exit(2);
}

if (from) {
  const res = await fetch(new URL(`/trace/${encodeURIComponent(requestId)}`, from));
  if (res.status === 404) {
    console.error(`the gateway at ${from} kept no request ${requestId} (it keeps the most recent ones); try its logs`);
    process.exit(1);
  }
  if (!res.ok) throw new Error(`${from} answered ${res.status}`);
  console.log(renderTrace((await res.json()) as Timeline));
} else {
  const lines: Array<Record<string, unknown>> = [];
  const sources = files.length > 0 ? files.map((f) => createReadStream(f)) : [process.stdin];
  for (const source of sources) {
    for await (const line of createInterface({ input: source, crlfDelay: Number.POSITIVE_INFINITY })) {
      if (!line.includes(requestId)) continue;
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON log line (startup output): skipped
      }
    }
  }
  const trace = traceFromLogs(requestId, lines);
  if (trace.lines.length === 0) {
    console.error(`no log line carries requestId ${requestId} (run the services with BALLAST_LOG_LEVEL=info)`);
    process.exit(1);
  }
  console.log(renderTrace(trace));
}
