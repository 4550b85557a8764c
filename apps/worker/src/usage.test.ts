import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InProcessQueue } from '@ballast/app-queue';
import { decodeFrames, recordIdFor, UsageLog, type UsageRecord } from '@ballast/app-usage';
import sharp from 'sharp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type JobUsage, ResizeWorker } from './index.ts';

let jpeg: Buffer;
let dir: string;
beforeAll(async () => {
  jpeg = await sharp({ create: { width: 400, height: 300, channels: 3, background: { r: 200, g: 40, b: 40 } } })
    .jpeg()
    .toBuffer();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ballast-worker-usage-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function logged(): UsageRecord[] {
  const names = readdirSync(dir)
    .filter((n) => n.startsWith('segment-'))
    .sort();
  return names.flatMap((n) => decodeFrames(readFileSync(join(dir, n))).payloads.map((p) => JSON.parse(p.toString()) as UsageRecord));
}

describe('ResizeWorker usage hook', () => {
  it('records every finished job on disk before acknowledging it: converted and failed alike', async () => {
    const queue = new InProcessQueue();
    const log = await UsageLog.open({ dir });
    const statesWhenRecorded: string[] = [];
    const worker = new ResizeWorker({
      queue,
      concurrency: 1,
      name: 'w',
      recordUsage: async (usage: JobUsage) => {
        statesWhenRecorded.push((await queue.result(usage.jobId))?.status ?? 'unknown');
        return await log.append(usage);
      },
    }).start();
    const deadlineAt = Date.now() + 10_000;
    const ok = await queue.enqueue({
      data: jpeg,
      params: { resize: { width: 100, format: 'webp' }, tenant: 'acme', requestId: 'r1' },
      deadlineAt,
    });
    const bad = await queue.enqueue({ data: Buffer.from('not an image'), params: { resize: {}, tenant: 'acme' }, deadlineAt });
    expect((await queue.wait(ok)).status).toBe('done');
    expect((await queue.wait(bad)).status).toBe('failed');
    expect(statesWhenRecorded).toEqual(['pending', 'pending']);
    const [done, failed] = logged();
    expect(done).toMatchObject({
      recordId: recordIdFor(ok),
      tenant: 'acme',
      outcome: 'done',
      formatIn: 'jpeg',
      formatOut: 'webp',
      pixelsIn: 400 * 300,
      pixelsOut: 100 * 75,
      bytesIn: jpeg.byteLength,
      requestId: 'r1',
      worker: 'w-0',
      attempt: 1,
    });
    expect(done?.cpuUs).toBeGreaterThan(0);
    expect(failed).toMatchObject({
      recordId: recordIdFor(bad),
      outcome: 'failed',
      errorCode: 'ERR_BALLAST_IMAGE_UNSUPPORTED',
      bytesOut: 0,
      formatOut: null,
    });
    await worker.close();
    await log.close();
    await queue.close();
  });

  it('leaves a job unacknowledged when its usage cannot be recorded; another worker runs it again', async () => {
    const queue = new InProcessQueue({ leaseMs: 300 });
    const log = await UsageLog.open({ dir });
    await log.close(); // a closed log refuses every append, as a full disk would
    const errors: unknown[] = [];
    const broken = new ResizeWorker({ queue, concurrency: 1, name: 'broken', recordUsage: (u) => log.append(u) });
    broken.events.on('error', ({ error }) => errors.push(error));
    broken.start();
    const id = await queue.enqueue({ data: jpeg, params: { resize: { width: 50 } }, deadlineAt: Date.now() + 20_000 });
    while (errors.length === 0) await new Promise((r) => setTimeout(r, 10));
    expect(String(errors[0])).toMatch(/closed/);
    expect((await queue.result(id))?.status).toBe('pending');
    await broken.close();
    const healthy = await UsageLog.open({ dir });
    const worker = new ResizeWorker({ queue, concurrency: 1, name: 'healthy', recordUsage: (u) => healthy.append(u) }).start();
    expect((await queue.wait(id)).status).toBe('done');
    // The broken worker may have taken the job again before it closed (a loaded machine
    // can outlast the 300 ms lease): each of its attempts failed, none was recorded.
    expect(logged()).toMatchObject([{ recordId: recordIdFor(id), attempt: errors.length + 1, worker: 'healthy-0' }]);
    await worker.close();
    await healthy.close();
    await queue.close();
  });
});
