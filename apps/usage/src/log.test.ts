import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeFrames } from './frame.ts';
import { UsageLog } from './log.ts';
import { listSegments, segmentName, UsageLogLockedError } from './log-dir.ts';
import { recordIdFor } from './record.ts';
import { finishedJob } from './testing/fixtures.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ballast-usage-log-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Every record in the directory's segments, in order. */
export function readAll(logDir: string): Array<{ recordId: string; jobId: string }> {
  const out: Array<{ recordId: string; jobId: string }> = [];
  const names = readdirSync(logDir)
    .filter((n) => n.startsWith('segment-'))
    .sort();
  for (const name of names) {
    for (const p of decodeFrames(readFileSync(join(logDir, name))).payloads) out.push(JSON.parse(p.toString()));
  }
  return out;
}

describe('UsageLog', () => {
  it('resolves an append once the record is in a segment, with a stable id per job', async () => {
    const log = await UsageLog.open({ dir });
    const record = await log.append(finishedJob(1));
    expect(record.recordId).toBe(recordIdFor('job-1'));
    expect(record.cpuUs).toBe(11_123);
    expect(readAll(dir).map((r) => r.jobId)).toEqual(['job-1']);
    await log.close();
  });

  it('commits concurrent appends together (group commit), each resolved', async () => {
    const log = await UsageLog.open({ dir });
    const records = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(finishedJob(i))));
    expect(records).toHaveLength(200);
    expect(log.stats().commits).toBeLessThan(200);
    expect(log.stats().appended).toBe(200);
    expect(readAll(dir)).toHaveLength(200);
    await log.close();
  });

  it('refuses a bad record by field name and writes nothing', async () => {
    const log = await UsageLog.open({ dir });
    await expect(log.append(finishedJob(1, { cpuMs: -1 }))).rejects.toThrow(/cpuMs must be a finite number of ms >= 0, got -1/);
    await expect(log.append(finishedJob(1, { tenant: '' }))).rejects.toThrow(/tenant must be/);
    await expect(log.append(finishedJob(1, { finishedAt: 1_700_000_000 }))).rejects.toThrow(/finishedAt must be epoch milliseconds/);
    await expect(log.append({ ...finishedJob(1), outcome: 'maybe' as 'done' })).rejects.toThrow(/outcome/);
    expect(readAll(dir)).toHaveLength(0);
    await log.append(finishedJob(2));
    expect(readAll(dir)).toHaveLength(1);
    await log.close();
  });

  it('truncates a torn tail at open, keeps every intact record, and starts a new segment', async () => {
    const first = await UsageLog.open({ dir });
    for (let i = 0; i < 5; i++) await first.append(finishedJob(i));
    await first.close();
    const [segment] = await listSegments(dir);
    const path = join(dir, segmentName(segment as number));
    const size = statSync(path).size;
    appendFileSync(path, Buffer.from([0x40, 0x01, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x7b, 0x22])); // a frame cut short
    const second = await UsageLog.open({ dir });
    expect(second.recovered).toEqual({ segment, validBytes: size, tornBytes: 10 });
    expect(statSync(path).size).toBe(size);
    await second.append(finishedJob(5));
    expect(await listSegments(dir)).toEqual([segment, (segment as number) + 1]);
    expect(readAll(dir).map((r) => r.jobId)).toEqual(['job-0', 'job-1', 'job-2', 'job-3', 'job-4', 'job-5']);
    await second.close();
  });

  it('rotates segments by size and by age', async () => {
    let now = Date.UTC(2026, 9, 3);
    const log = await UsageLog.open({ dir, segmentBytes: 2048, segmentMaxAgeMs: 60_000, now: () => now });
    for (let i = 0; i < 20; i++) await log.append(finishedJob(i));
    const bySize = (await listSegments(dir)).length;
    expect(bySize).toBeGreaterThan(2);
    now += 60_000;
    await log.append(finishedJob(20));
    expect((await listSegments(dir)).length).toBe(bySize + 1);
    expect(readAll(dir)).toHaveLength(21);
    await log.close();
  });

  it('allows one writer per directory, and takes over the lock of a dead process', async () => {
    const log = await UsageLog.open({ dir });
    await expect(UsageLog.open({ dir })).rejects.toBeInstanceOf(UsageLogLockedError);
    await log.close();
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => dead.once('exit', r));
    writeFileSync(join(dir, 'writer.lock'), String(dead.pid));
    const again = await UsageLog.open({ dir });
    await again.close();
  });

  it('rejects appends after close, and validates its options', async () => {
    const log = await UsageLog.open({ dir });
    await log.close();
    await expect(log.append(finishedJob(1))).rejects.toThrow(/closed/);
    await expect(UsageLog.open({ dir, segmentBytes: 10 })).rejects.toThrow(/segmentBytes must be an integer >= 1024, got 10/);
    await expect(UsageLog.open({ dir: '' })).rejects.toThrow(/dir must be a non-empty string/);
  });

  it('loses no acknowledged record when its process is killed with SIGKILL at any instant', async () => {
    for (let round = 0; round < 3; round++) {
      const acked = await appendUntilKilled(dir, 30 + round * 40);
      const log = await UsageLog.open({ dir });
      const present = new Set(readAll(dir).map((r) => r.jobId));
      for (const id of acked) expect(present.has(id), `${id} acknowledged but not in the log`).toBe(true);
      expect(acked.length).toBeGreaterThan(0);
      await log.close();
    }
  });
});

/**
 * Runs a child that appends records and prints each id once `append` resolved; SIGKILLs it
 * `ms` after its first acknowledgement (mid-stream however slow the machine is).
 */
async function appendUntilKilled(logDir: string, ms: number): Promise<string[]> {
  const script = `
    import { UsageLog } from ${JSON.stringify(new URL('./log.ts', import.meta.url).pathname)};
    const log = await UsageLog.open({ dir: ${JSON.stringify(logDir)} });
    const fixture = (n) => ({ jobId: 'job-' + process.pid + '-' + n, tenant: 't', worker: 'w', attempt: 1, outcome: 'done', cpuMs: 1, wallMs: 1,
      bytesIn: 1, bytesOut: 1, enqueuedAt: Date.now(), startedAt: Date.now(), finishedAt: Date.now() });
    process.stdout.write('ready\\n');
    for (let n = 0; ; n++) {
      const batch = [0, 1, 2, 3].map((k) => log.append(fixture(n * 4 + k)).then((r) => process.stdout.write(r.jobId + '\\n')));
      await Promise.all(batch);
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '--conditions=@ballast/source', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acked: string[] = [];
  let buffered = '';
  let acknowledged: () => void = () => {};
  const appending = new Promise<void>((r) => {
    acknowledged = r;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (line === 'ready' || line === '') continue;
      acked.push(line);
      acknowledged();
    }
  });
  await Promise.race([appending, new Promise((r) => child.once('close', r))]);
  await new Promise((r) => setTimeout(r, ms));
  const exited = new Promise((r) => child.once('close', r)); // after stdout is drained
  child.kill('SIGKILL');
  await exited;
  return acked;
}
