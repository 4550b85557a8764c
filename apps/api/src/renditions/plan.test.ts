import { seededRandom } from '@ballast/common';
import { describe, expect, it } from 'vitest';
import { EFFORT_FLOOR, planRenditions, type Rendition, renditionCost } from './plan.ts';

/** A responsive srcset: three widths in WebP and AVIF, at the default efforts. */
const SRCSET: Rendition[] = [320, 640, 960].flatMap((width) => [
  { width, format: 'webp' as const, effort: 4 },
  { width, format: 'avif' as const, effort: 4 },
]);

const cost = (plan: ReturnType<typeof planRenditions>): number =>
  plan.renditions.filter((r) => r.dropped === undefined).reduce((sum, r) => sum + renditionCost(r.width, r.format, r.plannedEffort), 0);

describe('planRenditions', () => {
  it('changes nothing at full level', () => {
    const plan = planRenditions(SRCSET, 1, () => 0);
    expect(plan.planned).toBe(6);
    expect(plan.stages).toEqual({ effort: 0, format: 0, width: 0 });
    expect(plan.renditions.every((r) => r.plannedEffort === r.effort)).toBe(true);
  });

  it('degrades in the documented order as θ falls: effort, then AVIF, then widths; one rendition always stays', () => {
    let stage = 0; // highest stage reached so far: 1 effort, 2 format, 3 width
    for (let level = 1; level >= 0; level -= 0.01) {
      const plan = planRenditions(SRCSET, level, () => 0.5);
      const reached = plan.stages.width > 0 ? 3 : plan.stages.format > 0 ? 2 : plan.stages.effort > 0 ? 1 : 0;
      expect(reached).toBeGreaterThanOrEqual(stage);
      stage = reached;
      // No AVIF dropped before every effort was lowered; no width dropped while an AVIF rendition is made.
      if (plan.stages.format > 0) expect(plan.stages.effort).toBe(6);
      if (plan.stages.width > 0) expect(plan.renditions.filter((r) => r.format === 'avif' && r.dropped === undefined)).toEqual([]);
      expect(plan.planned).toBeGreaterThanOrEqual(1);
    }
    const least = planRenditions(SRCSET, 0, () => 0.5);
    expect(least.renditions.filter((r) => r.dropped === undefined)).toEqual([
      { width: 320, format: 'webp', effort: 4, plannedEffort: EFFORT_FLOOR.webp },
    ]);
    expect(least.stages).toEqual({ effort: 6, format: 3, width: 2 });
  });

  it('drops the costliest first within a stage (the largest AVIF, then the largest width)', () => {
    const plan = planRenditions(SRCSET, 0.3, seededRandom(3));
    const dropped = plan.renditions.filter((r) => r.dropped !== undefined);
    const avif = dropped.filter((r) => r.format === 'avif').map((r) => r.width);
    expect(avif).toEqual([...avif].sort((a, b) => b - a));
    if (avif.length > 0)
      expect(Math.min(...avif)).toBeGreaterThanOrEqual(
        Math.max(...plan.renditions.filter((r) => r.format === 'avif' && !r.dropped).map((r) => r.width), 0),
      );
  });

  it('makes the expected cost of a set linear in θ (what the controller assumes)', () => {
    const random = seededRandom(11);
    const full = cost(planRenditions(SRCSET, 1, random));
    const least = cost(planRenditions(SRCSET, 0, random));
    for (const level of [0.1, 0.35, 0.6, 0.85, 0.97]) {
      let sum = 0;
      for (let i = 0; i < 4000; i++) sum += cost(planRenditions(SRCSET, level, random));
      expect(sum / 4000 / (least + level * (full - least))).toBeCloseTo(1, 1);
    }
  });

  it('never drops with allowDrops false, and says how much θ asked beyond lowering efforts', () => {
    const justEfforts = planRenditions(SRCSET, 0.99, () => 0.5, false);
    expect(justEfforts.shortfallMs).toBe(0);
    // AVIF at effort 4 costs ten times its effort 0: lowering efforts alone reaches θ ≈ 0.08 here.
    expect(planRenditions(SRCSET, 0.2, () => 0.5, false).shortfallMs).toBe(0);
    const deep = planRenditions(SRCSET, 0.02, () => 0.5, false);
    expect(deep.planned).toBe(6);
    expect(deep.stages).toEqual({ effort: 6, format: 0, width: 0 });
    expect(deep.shortfallMs).toBeGreaterThan(0);
  });

  it('keeps the smallest AVIF when only AVIF is asked, and has nothing to lower for JPEG', () => {
    const avif = planRenditions(
      [640, 320].map((width) => ({ width, format: 'avif' as const, effort: 2 })),
      0,
      () => 0,
    );
    expect(avif.renditions.map((r) => [r.width, r.dropped ?? 'made', r.plannedEffort])).toEqual([
      [640, 'format', 0],
      [320, 'made', 0],
    ]);
    const jpeg = planRenditions([{ width: 800, format: 'jpeg', effort: 0 }], 0, () => 0);
    expect([jpeg.planned, jpeg.stages.effort, jpeg.shortfallMs]).toEqual([1, 0, 0]);
  });
});
