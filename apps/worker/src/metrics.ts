import { Counter, Histogram, Registry } from 'prom-client';
import type { ResizeWorker } from './worker.ts';

/**
 * Prometheus metrics of a worker, in their own registry by default. Workers given the
 * same registry share its metrics, which then add up their jobs (the embedded system
 * serves its workers' metrics this way on the gateway's `/metrics`).
 */
export function workerMetrics(worker: ResizeWorker, registry: Registry = new Registry()): Registry {
  const jobs =
    existing<Counter>(registry, 'ballast_worker_jobs_total') ??
    new Counter({
      name: 'ballast_worker_jobs_total',
      help: 'Jobs finished, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    });
  const wall =
    existing<Histogram>(registry, 'ballast_worker_conversion_seconds') ??
    new Histogram({
      name: 'ballast_worker_conversion_seconds',
      help: 'Wall time of each conversion',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
  const cpu =
    existing<Counter>(registry, 'ballast_worker_cpu_seconds_total') ??
    new Counter({ name: 'ballast_worker_cpu_seconds_total', help: 'CPU time attributed to conversions', registers: [registry] });
  const bytes =
    existing<Counter>(registry, 'ballast_worker_bytes_total') ??
    new Counter({
      name: 'ballast_worker_bytes_total',
      help: 'Image bytes, by direction',
      labelNames: ['direction'],
      registers: [registry],
    });
  worker.events.on('done', (u) => {
    jobs.inc({ outcome: 'done' });
    wall.observe(u.wallMs / 1000);
    cpu.inc(u.cpuMs / 1000);
    bytes.inc({ direction: 'in' }, u.bytesIn);
    bytes.inc({ direction: 'out' }, u.bytesOut);
  });
  worker.events.on('failed', () => jobs.inc({ outcome: 'failed' }));
  worker.events.on('error', () => jobs.inc({ outcome: 'error' }));
  return registry;
}

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}
