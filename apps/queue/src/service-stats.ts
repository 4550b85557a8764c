import { nearestRank } from '@ballast/common';
import { SERVICE_RING_SIZE, type ServiceStats } from './types.ts';

/** One service-time sample: how long a consumer held a job, and when it finished. */
export interface ServiceSample {
  ms: number;
  at: number;
}

/** The decayed mean of one store (a shard, or the in-process queue), before merging. */
export interface ServicePart {
  samples: number;
  /** Decayed mean, ms. */
  meanMs: number;
  /** Decayed total weight of the samples behind `meanMs`, at `updatedAt`. */
  weight: number;
  updatedAt: number;
  /** Newest first. */
  recent: ServiceSample[];
}

/**
 * The time-decayed weighted mean the queue keeps (the Redis scripts compute the same in
 * Lua): every sample enters with weight 1, and weights halve every `halfLifeMs`, so
 * after a quiet spell the next samples outweigh the old mean at once.
 */
export function addServiceSample(part: ServicePart, sample: ServiceSample, halfLifeMs: number, ring: number = SERVICE_RING_SIZE): void {
  const decay = part.samples === 0 ? 0 : 2 ** (-Math.max(0, sample.at - part.updatedAt) / halfLifeMs);
  const weight = part.weight * decay;
  part.meanMs = (part.meanMs * weight + sample.ms) / (weight + 1);
  part.weight = weight + 1;
  part.samples++;
  part.updatedAt = Math.max(part.updatedAt, sample.at);
  part.recent.unshift(sample);
  if (part.recent.length > ring) part.recent.length = ring;
}

/** An empty {@link ServicePart}. */
export function emptyServicePart(): ServicePart {
  return { samples: 0, meanMs: 0, weight: 0, updatedAt: 0, recent: [] };
}

/**
 * Merges the parts of every shard into one {@link ServiceStats}: means weighted by
 * their decayed weight at the newest update, recent samples merged newest first.
 */
export function serviceStatsOf(parts: readonly ServicePart[], halfLifeMs: number): ServiceStats {
  const updatedAt = parts.reduce((max, p) => Math.max(max, p.updatedAt), 0);
  let weight = 0;
  let sum = 0;
  let samples = 0;
  for (const part of parts) {
    samples += part.samples;
    if (part.samples === 0) continue;
    const w = part.weight * 2 ** (-(updatedAt - part.updatedAt) / halfLifeMs);
    weight += w;
    sum += w * part.meanMs;
  }
  const recent = parts
    .flatMap((p) => p.recent)
    .sort((a, b) => b.at - a.at)
    .slice(0, SERVICE_RING_SIZE);
  const recentMs = recent.map((s) => s.ms);
  const sorted = [...recentMs].sort((a, b) => a - b);
  const quantile = (q: number): number => (sorted.length === 0 ? 0 : nearestRank(sorted, q));
  const medianMs = quantile(0.5);
  const cap = 4 * medianMs;
  const clampedMeanMs = recentMs.length === 0 ? 0 : recentMs.reduce((acc, ms) => acc + Math.min(ms, cap), 0) / recentMs.length;
  return {
    samples,
    meanMs: weight > 0 ? sum / weight : 0,
    recentMs,
    medianMs,
    p90Ms: quantile(0.9),
    clampedMeanMs,
    updatedAt,
  };
}
