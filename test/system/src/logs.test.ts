/**
 * Logs and transaction paths through the real system: one JSON line per request at the
 * gateway and the API server and one per job at the worker, all with the request id and
 * the tenant; no credential a client sent ever reaches a log line; a request's stages
 * rebuilt from the logs match the gateway's own timeline.
 */

import { traceFromLogs } from '@ballast/app-gateway';
import { memoryLogger } from '@ballast/app-shared';
import { startSystem } from '@ballast/app-system';
import { afterEach, describe, expect, it } from 'vitest';
import { smallJpeg } from './helpers.ts';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

describe('request logs', () => {
  it('carry the request id and tenant gateway → API → worker, redact credentials, and rebuild the timeline', async () => {
    const { logger, entries } = memoryLogger('info');
    const system = await startSystem({ apis: 2, workers: 1, logger });
    open.push(system);
    const image = await smallJpeg();
    const secrets = ['Bearer sk_live_abcdef0123456789', 'bk_test_9876543210fedcba', 'session=s3cr3t'];
    const res = await fetch(`${system.url}/v1/resize?width=64`, {
      method: 'POST',
      body: image,
      headers: {
        'content-type': 'image/jpeg',
        'x-request-id': 'logs-1',
        authorization: secrets[0] as string,
        'x-api-key': secrets[1] as string,
        cookie: secrets[2] as string,
      },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    // A refused request, its key in the query string too.
    const refused = await fetch(`${system.url}/v1/resize?api_key=${secrets[1]}`, {
      method: 'POST',
      body: image,
      headers: { 'x-request-id': 'logs-2', authorization: secrets[0] as string },
    });
    expect(refused.status).toBe(400);
    await refused.arrayBuffer();
    await new Promise((r) => setTimeout(r, 100)); // the gateway's line is written once the answer is sent

    const text = JSON.stringify(entries);
    for (const secret of secrets) expect(text).not.toContain(secret.split(' ').at(-1));
    const mine = entries.filter((e) => e.requestId === 'logs-1');
    const services = mine.map((e) => `${e.service}:${e.msg}`);
    expect(services).toContain('gateway:request');
    expect(services.filter((s) => /^api-\d:request$/.test(s))).toHaveLength(1);
    expect(services).toContain('worker:job done');
    for (const line of mine.filter((e) => e.msg === 'request' || e.msg === 'job done')) {
      if (line.service !== 'gateway') expect(line.tenant).toBe('anonymous');
    }
    const trace = traceFromLogs('logs-1', entries);
    expect(trace.stages.map((s) => s.stage)).toEqual(
      expect.arrayContaining(['gateway', 'admission', 'enqueue', 'queue_wait', 'conversion']),
    );
    const timeline = (await (await fetch(`${system.opsUrl}/trace/logs-1`)).json()) as {
      stages: Array<{ stage: string; durationMs: number }>;
    };
    const fromLogs = Object.fromEntries(trace.stages.map((s) => [s.stage, s.durationMs]));
    for (const s of timeline.stages.filter((x) => ['admission', 'enqueue', 'queue_wait', 'conversion'].includes(x.stage))) {
      expect(fromLogs[s.stage], s.stage).toBeCloseTo(s.durationMs, 1);
    }
  });
});
