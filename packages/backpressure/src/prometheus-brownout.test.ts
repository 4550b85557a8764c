import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BrownoutController } from './brownout.ts';
import { BrownoutMetrics } from './prometheus.ts';

describe('BrownoutMetrics', () => {
  it('exports the level, setpoint, measurement, estimate and counters of each controller', async () => {
    const registry = new Registry();
    const metrics = new BrownoutMetrics({ registry });
    const dimmer = new BrownoutController({ name: 'api-1', setpointMs: 200, autoUpdate: false, random: () => 0.5 });
    const other = new BrownoutController({ name: 'api-2', autoUpdate: false });
    metrics.track(dimmer);
    const untrack = metrics.track(other);
    dimmer.update(400);
    dimmer.update();
    dimmer.shouldServeOptional();
    const text = await registry.metrics();
    expect(text).toContain(`ballast_brownout_level{controller="api-1"} ${dimmer.level}`);
    expect(text).toContain('ballast_brownout_setpoint_seconds{controller="api-1"} 0.2');
    expect(text).toContain('ballast_brownout_measured_seconds{controller="api-1"} 0.4');
    expect(text).toContain('ballast_brownout_updates_total{controller="api-1"} 1');
    expect(text).toContain('ballast_brownout_holds_total{controller="api-1"} 1');
    expect(text).toMatch(/ballast_brownout_optional_total\{controller="api-1",decision="(served|skipped)"\} 1/);
    expect(text).toContain('ballast_brownout_level{controller="api-2"} 1');
    // No measurement yet: no sample rather than NaN.
    expect(text).not.toContain('ballast_brownout_measured_seconds{controller="api-2"}');
    untrack();
    expect(await registry.metrics()).not.toContain('controller="api-2"');
    metrics.close();
    expect(await registry.metrics()).toBe('\n');
  });
});
