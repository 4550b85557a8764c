/**
 * The documented command works: a real Prometheus (Debian's package) started by
 * ops/src/prometheus.ts scrapes a running system's operational listeners, loads the rules,
 * and sees the front-door metrics.
 */
import { startSystem } from '@ballast/app-system';
import { sampleJpeg } from '@ballast/app-worker';
import { describe, expect, it } from 'vitest';
import { parseArgs, startPrometheus } from './prometheus.ts';

describe('npm run prometheus', () => {
  it('parses targets and refuses what is not host:port', () => {
    expect(parseArgs(['--gateway', 'http://127.0.0.1:9464/', '--api', '127.0.0.1:1,127.0.0.1:2', '--port', '0'])).toEqual({
      targets: { gateway: ['127.0.0.1:9464'], api: ['127.0.0.1:1', '127.0.0.1:2'], worker: [] },
      port: 0,
      check: false,
    });
    expect(() => parseArgs([])).toThrow(/no targets/);
    expect(() => parseArgs(['--api', 'not a target'])).toThrow(/--api takes host:port/);
    expect(() => parseArgs(['--port', '99999', '--gateway', 'a:1'])).toThrow(/--port/);
    expect(() => parseArgs(['--nope'])).toThrow(/unknown argument/);
  });

  it('starts a real Prometheus that scrapes a running system with the rules loaded', { timeout: 120_000 }, async () => {
    await using system = await startSystem({ apis: 2, workers: 1 });
    const image = await sampleJpeg();
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${system.url}/v1/resize?width=100`, {
        method: 'POST',
        body: image,
        headers: { 'content-type': 'image/jpeg' },
      });
      await res.arrayBuffer();
    }
    const host = (url: string): string => new URL(url).host;
    const prometheus = await startPrometheus({ gateway: [host(system.opsUrl)], api: system.apis.map((a) => host(a.ops.url)), worker: [] });
    try {
      const seen = await prometheus.ready();
      expect(seen.targets.map((t) => t.job).sort()).toEqual(['ballast-api', 'ballast-api', 'ballast-gateway']);
      const rules = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: unknown[] }> } };
      expect(rules.data.groups.flatMap((g) => g.rules).length).toBe(30);
      const query = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> =>
        ((await (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: [] } }).data
          .result;
      const served = await query('sum(ballast_frontdoor_requests_total{route="resize",outcome="success"})');
      expect(Number(served[0]?.value[1])).toBe(5);
      expect((await query('ballast_api_queue_up')).map((r) => r.value[1])).toEqual(['1', '1']);
      expect((await query('ballast_failure_detector_phi')).length).toBe(2);
    } finally {
      await prometheus.stop();
    }
  });
});
