import type { JobQueue } from '@ballast/app-queue';
import { Gauge, type Registry } from 'prom-client';

/** How long a scrape waits for the queue before reporting it unreachable, ms. */
const PROBE_MS = 1000;

/**
 * The queue as the alerts see it, read at scrape time:
 * - `ballast_api_queue_up`: 1 when this server reaches its queue (PING within 1 s), else 0;
 * - `ballast_api_queue_oldest_job_age_seconds`: how long the oldest job not yet taken by a
 *   worker has waited (absent when the queue cannot tell, or cannot be reached).
 */
export function queueMetrics(registry: Registry, queue: JobQueue): void {
  const within = <T>(work: Promise<T>): Promise<T> =>
    Promise.race([
      work,
      new Promise<never>((_, reject) => {
        const timer = setTimeout(() => reject(new Error('timeout')), PROBE_MS);
        timer.unref();
      }),
    ]);
  new Gauge({
    name: 'ballast_api_queue_up',
    help: '1 while this API server reaches its job queue, 0 while it cannot (a failover in progress, the queue down)',
    registers: [registry],
    async collect() {
      this.set(
        await within(queue.ping()).then(
          () => 1,
          () => 0,
        ),
      );
    },
  });
  new Gauge({
    name: 'ballast_api_queue_oldest_job_age_seconds',
    help: 'How long the oldest job not yet taken by a worker has waited, seconds',
    registers: [registry],
    async collect() {
      this.reset();
      if (!queue.oldestWaitingAgeMs) return;
      const ms = await within(queue.oldestWaitingAgeMs()).catch(() => undefined);
      if (ms !== undefined) this.set(ms / 1000);
    },
  });
}
