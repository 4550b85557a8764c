import { Counter, Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ScrapedMetrics } from './prometheus.ts';

interface Stats {
  served: number;
  depth: number;
}

describe('ScrapedMetrics', () => {
  it('fills counters and gauges from the snapshots at each scrape, then removes them on close', async () => {
    const register = new Registry();
    const sources = new Map<string, Stats>([['a', { served: 3, depth: 1 }]]);
    const metrics = new ScrapedMetrics<Stats, Registry>({
      classes: { Counter, Gauge },
      registers: [register],
      prefix: 'x_',
      snapshots: () => sources.entries(),
    });
    metrics.counter('served_total', 'Served.', ['source'], (set, source, s) => set({ source }, s.served));
    metrics.gauge('depth', 'Depth.', ['source'], (set, source, s) => set({ source }, s.depth));
    expect(metrics.names).toEqual(['x_served_total', 'x_depth']);
    let text = await register.metrics();
    expect(text).toContain('# TYPE x_served_total counter\nx_served_total{source="a"} 3');
    expect(text).toContain('# TYPE x_depth gauge\nx_depth{source="a"} 1');

    // Read again at the next scrape: running totals replace the last ones, gauges go down too.
    sources.set('a', { served: 5, depth: 0 }).set('b', { served: 1, depth: 7 });
    text = await register.metrics();
    expect(text).toContain('x_served_total{source="a"} 5\nx_served_total{source="b"} 1');
    expect(text).toContain('x_depth{source="a"} 0\nx_depth{source="b"} 7');
    sources.delete('b');
    expect(await register.metrics()).not.toContain('source="b"');

    metrics[Symbol.dispose]();
    metrics.close();
    expect((await register.metrics()).trim()).toBe('');
  });
});
