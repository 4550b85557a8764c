import type { JobQueue } from '@ballast/app-queue';
import { requestMetrics } from '@ballast/app-shared';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Admission } from './admission.ts';

/** The API's metrics, registered in `registry`. */
export interface ApiMetrics {
  readonly requests: ReturnType<typeof requestMetrics<'mode'>>;
  readonly shed: Counter<'reason'>;
}

/**
 * `ballast_api_requests_total{mode,status}`, `ballast_api_request_seconds{mode}`,
 * `ballast_api_shed_total{reason}`, and gauges read at scrape time:
 * `ballast_api_queue_depth` (NaN while the queue is unreachable), `ballast_api_inflight`,
 * `ballast_api_expected_service_ms`.
 */
export function apiMetrics(registry: Registry, queue: JobQueue, admission: Admission): ApiMetrics {
  const registers = [registry];
  new Gauge({
    name: 'ballast_api_queue_depth',
    help: 'Jobs waiting or in progress in the queue (NaN while it is unreachable)',
    registers,
    async collect() {
      // Read now: admission's own reading is cached and counts the requests it admitted since.
      this.set(await queue.depth().catch(() => Number.NaN));
    },
  });
  new Gauge({
    name: 'ballast_api_inflight',
    help: 'Requests held by this server',
    registers,
    collect() {
      this.set(admission.limiter.inflight);
    },
  });
  new Gauge({
    name: 'ballast_api_expected_service_ms',
    help: 'The conversion time admission expects, ms',
    registers,
    collect() {
      this.set(admission.serviceMs);
    },
  });
  return {
    requests: requestMetrics(registry, 'ballast_api', 'Resize and job requests', ['mode']),
    shed: new Counter({ name: 'ballast_api_shed_total', help: 'Requests shed, by reason', labelNames: ['reason'], registers }),
  };
}
