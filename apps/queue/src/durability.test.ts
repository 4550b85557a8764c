/**
 * Correlated failure: every Redis process of the topology (primary, replicas,
 * Sentinels) killed at once with SIGKILL while jobs are enqueued and completed, then
 * started again from their append-only files (see `runPowerCutScenario`). Every job whose
 * enqueue was acknowledged is still there and completes exactly once. Without
 * persistence the same scenario loses them (the second case shows the test can fail).
 */
import { describe, expect, it } from 'vitest';
import { runPowerCutScenario } from './testing/index.ts';

describe('a power cut of every Redis process at once', () => {
  it('loses no acknowledged job with the append-only file, and each completes exactly once', { timeout: 240_000 }, async () => {
    const report = await runPowerCutScenario('everysec');
    console.log(
      `power cut: ${report.acknowledged} acknowledged (${report.acknowledgedBeforeCut} before the cut), ${report.refused} refused, ` +
        `${report.lost.length} lost, ${report.twice.length} completed twice`,
    );
    expect(report.acknowledgedBeforeCut).toBeGreaterThan(0);
    expect(report.lost).toEqual([]);
    expect(report.twice).toEqual([]);
  });

  it('loses acknowledged jobs without persistence', { timeout: 120_000 }, async () => {
    const report = await runPowerCutScenario(false, 5000);
    expect(report.lost.length).toBeGreaterThan(0);
  });
});
