/**
 * Seeded randomness for the simulation. Every stream is derived from the run's seed
 * and a name, so the workload (arrivals, service times, keys, failures) is identical
 * for every strategy — common random numbers — and the balancer's own coin flips come
 * from a separate stream that cannot shift the workload.
 */

/** A uniform random source in [0, 1). */
export type Random = () => number;

/** sfc32 seeded through splitmix32: fast, 128-bit state, good statistical quality. */
export function seeded(seed: number, stream = ''): Random {
  let h = seed >>> 0;
  for (let i = 0; i < stream.length; i++) h = Math.imul(h ^ stream.charCodeAt(i), 0x9e3779b1) >>> 0;
  const split = (): number => {
    h = (h + 0x9e3779b9) | 0;
    let z = h;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** A service-time (or inter-arrival) distribution, sampled from one uniform draw so draws can be shared across runs. */
export interface Distribution {
  readonly mean: number;
  /** Maps a uniform `u` in [0, 1) to a sample. */
  sample(u: number): number;
  readonly label: string;
}

export function exponential(mean: number): Distribution {
  return { mean, sample: (u) => -Math.log(1 - u) * mean, label: `exponential(mean ${mean} ms)` };
}

/**
 * Pareto with shape `alpha` (> 1) scaled to `mean`: a heavy tail where a few requests
 * take tens of times the median.
 */
export function pareto(mean: number, alpha: number): Distribution {
  const xm = (mean * (alpha - 1)) / alpha;
  return { mean, sample: (u) => xm / (1 - u) ** (1 / alpha), label: `Pareto(α ${alpha}, mean ${mean} ms)` };
}

/** Multiplies every sample (and the mean) by `factor`. */
export function scaled(dist: Distribution, factor: number): Distribution {
  return { mean: dist.mean * factor, sample: (u) => dist.sample(u) * factor, label: `${dist.label} × ${factor}` };
}
