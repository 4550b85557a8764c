import type { FinishedJob } from '../record.ts';

/** A finished job as a worker reports it; `n` varies the id and the figures. */
export function finishedJob(n: number, overrides: Partial<FinishedJob> = {}): FinishedJob {
  const finishedAt = Date.UTC(2026, 9, 3, 12, 0, 0) + n * 1000;
  return {
    jobId: `job-${n}`,
    tenant: `tenant-${n % 3}`,
    worker: 'worker-a-0',
    attempt: 1,
    outcome: 'done',
    cpuMs: 10 + (n % 7) + 0.123,
    wallMs: 12 + (n % 5),
    bytesIn: 250_000 + n,
    bytesOut: 30_000 + n,
    pixelsIn: 1600 * 1200,
    pixelsOut: 800 * 600,
    formatIn: 'jpeg',
    format: 'webp',
    enqueuedAt: finishedAt - 50,
    startedAt: finishedAt - 20,
    finishedAt,
    requestId: `req-${n}`,
    ...overrides,
  };
}
