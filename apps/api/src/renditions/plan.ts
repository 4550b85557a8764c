import { MAX_EFFORT, type ResizeParams } from '@ballast/app-queue';

/** An output format of the system. */
export type Format = ResizeParams['format'];

/** One rendition as asked: a width in a format, at an encoder effort. */
export interface Rendition {
  width: number;
  format: Format;
  /** The effort asked for (or the format's default). */
  effort: number;
}

/**
 * The degradation stages, in the order they are applied as the dimmer θ falls — before
 * any request is shed:
 * 1. `effort`: lower encoder effort (same renditions, a little larger and less polished);
 * 2. `format`: drop the costliest optional renditions, AVIF first (the browser falls back
 *    to the other format of the `srcset`);
 * 3. `width`: fewer widths (the browser picks the nearest width left and scales it).
 */
export type DegradationStage = 'effort' | 'format' | 'width';

/** Every {@link DegradationStage}, in order. */
export const DEGRADATION_STAGES: readonly DegradationStage[] = ['effort', 'format', 'width'];

/** What the plan does with one rendition. */
export type PlannedRendition = Rendition & {
  /** The effort it will be encoded at (lower than `effort` once the `effort` stage reached it). */
  plannedEffort: number;
  /** Set when the rendition is not made at all: the stage that dropped it. */
  dropped?: 'format' | 'width';
};

/** A rendition set's plan at one dimmer level. */
export interface RenditionPlan {
  renditions: PlannedRendition[];
  /** Renditions each stage touched (lowered or dropped). */
  stages: Record<DegradationStage, number>;
  /** Renditions to make. */
  planned: number;
  /**
   * Optional work θ asks to give up that the plan could not (indicative ms): more than 0
   * only without drops (`allowDrops: false`), when θ is below what lowering efforts reaches.
   */
  shortfallMs: number;
}

/** The lowest effort the `effort` stage goes down to, per format (PNG's 0 would store uncompressed). */
export const EFFORT_FLOOR: Readonly<Record<Format, number>> = { jpeg: 0, png: 1, webp: 0, avif: 0 };

/**
 * Indicative CPU cost of encoding one megapixel of output, ms, per format and effort:
 * libvips on one core, `sampleJpeg()` (1600×1200, photo-like) resized to 160–640 px wide,
 * rounded (AVIF's top effort is disproportionately dear at these sizes). Only the ratios
 * matter: they order the stages' steps and size each one's share of the savings.
 */
const COST_PER_MP: Readonly<Record<Format, readonly number[]>> = {
  jpeg: [70],
  png: [100, 107, 115, 125, 135, 150, 166, 190, 220, 260],
  webp: [93, 110, 140, 180, 235, 380, 570],
  avif: [305, 320, 625, 1600, 12_000],
};
/** Decoding the input and the job's own overhead, once per job, ms (indicative). */
const DECODE_MS = 8;

/** Indicative cost of one rendition, ms: the input decoded, then `width` × ¾ `width` pixels encoded. */
export function renditionCost(width: number, format: Format, effort: number): number {
  const table = COST_PER_MP[format];
  const perMp = table[Math.min(Math.max(0, effort), table.length - 1)] as number;
  return DECODE_MS + ((width * width * 0.75) / 1e6) * perMp;
}

interface Step {
  stage: DegradationStage;
  index: number;
  saving: number;
}

/**
 * Plans a rendition set at dimmer level θ (1: everything as asked … 0: the least that
 * still answers). The optional work is a list of steps in the documented order — each
 * rendition's effort lowered (the largest saving first), then AVIF renditions dropped
 * (largest first), then widths dropped (largest first) — and a share 1 − θ of its
 * indicative cost is given up, the step on the boundary taken with the probability of
 * its remaining share. The expected cost of a set is therefore linear in θ, which is
 * what the brownout controller's model assumes. One rendition is never dropped: the
 * smallest width of the first format asked that is not AVIF (of AVIF when only AVIF is
 * asked). With `allowDrops: false` only efforts are lowered, and what θ asks beyond them
 * is reported as `shortfallMs`.
 */
export function planRenditions(asked: readonly Rendition[], level: number, random: () => number, allowDrops = true): RenditionPlan {
  const renditions: PlannedRendition[] = asked.map((r) => ({ ...r, plannedEffort: r.effort }));
  const stages: Record<DegradationStage, number> = { effort: 0, format: 0, width: 0 };
  const steps = optionalSteps(asked);
  const total = steps.reduce((sum, s) => sum + s.saving, 0);
  let budget = (1 - Math.min(1, Math.max(0, level))) * total;
  for (const step of steps) {
    if (budget <= 0) break;
    if (!allowDrops && step.stage !== 'effort') break;
    const take = budget >= step.saving || random() < budget / step.saving;
    budget -= step.saving;
    if (!take) continue;
    const r = renditions[step.index] as PlannedRendition;
    if (step.stage === 'effort') r.plannedEffort = EFFORT_FLOOR[r.format];
    else r.dropped = step.stage;
    stages[step.stage]++;
  }
  return {
    renditions,
    stages,
    planned: renditions.filter((r) => r.dropped === undefined).length,
    shortfallMs: !allowDrops && budget > total * 1e-9 ? budget : 0,
  };
}

/** The optional steps of a set, in the order they are given up. */
function optionalSteps(asked: readonly Rendition[]): Step[] {
  const indexed = asked.map((r, index) => ({ r, index }));
  const floor = (r: Rendition): number => renditionCost(r.width, r.format, EFFORT_FLOOR[r.format]);
  const efforts: Step[] = indexed
    .filter(({ r }) => r.effort > EFFORT_FLOOR[r.format] && MAX_EFFORT[r.format] > 0)
    .map(({ r, index }) => ({ stage: 'effort' as const, index, saving: renditionCost(r.width, r.format, r.effort) - floor(r) }))
    .sort((a, b) => b.saving - a.saving);
  const kept = mandatory(asked);
  const byCost = (a: Step, b: Step): number => b.saving - a.saving;
  const formats: Step[] = indexed
    .filter(({ r, index }) => r.format === 'avif' && index !== kept)
    .map(({ r, index }) => ({ stage: 'format' as const, index, saving: floor(r) }))
    .sort(byCost);
  const widths: Step[] = indexed
    .filter(({ r, index }) => r.format !== 'avif' && index !== kept)
    .map(({ r, index }) => ({ stage: 'width' as const, index, saving: floor(r) }))
    .sort(byCost);
  return [...efforts, ...formats, ...widths];
}

/** Index of the rendition never dropped: the smallest width of the first format asked that is not AVIF, else of AVIF. */
function mandatory(asked: readonly Rendition[]): number {
  const format = asked.find((r) => r.format !== 'avif')?.format ?? 'avif';
  let best = -1;
  asked.forEach((r, i) => {
    if (r.format === format && (best < 0 || r.width < (asked[best] as Rendition).width)) best = i;
  });
  return best;
}
