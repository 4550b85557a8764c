/**
 * The Redis queue under real network partitions and a paused primary (see
 * `runPartitionScenario`): over five failure cycles, no acknowledged job is lost and
 * none completes twice. Needs root, `ip netns` and iptables (CI has them); elsewhere it
 * is skipped with the reason printed.
 */
import { netnsUnavailable } from '@ballast/test/netns';
import { describe, expect, it } from 'vitest';
import { runPartitionScenario } from './testing/index.ts';

const unavailable = await netnsUnavailable();
if (unavailable) console.warn(`partition tests skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)('partitions and a paused primary', () => {
  it('lose no acknowledged job and complete none twice over five failure cycles', { timeout: 240_000 }, async () => {
    const report = await runPartitionScenario({ cycles: 5, log: (line) => console.log(line) });
    console.log(
      `partition scenario: ${report.acknowledged} acknowledged, ${report.refused} refused, ${report.lost.length} lost, ` +
        `${report.twice.length} completed twice, ${report.reruns} reruns; primaries: ${report.cycles.map((c) => `${c.kind} ${c.primaryBefore}→${c.primaryAfter}`).join(', ')}`,
    );
    expect(report.cycles).toHaveLength(5);
    expect(report.acknowledged).toBeGreaterThan(0);
    expect(report.lost).toEqual([]);
    expect(report.twice).toEqual([]);
    // The failures really moved the primary: Sentinel promoted a replica at least once.
    expect(report.cycles.some((c) => c.primaryAfter !== c.primaryBefore)).toBe(true);
  });
});
