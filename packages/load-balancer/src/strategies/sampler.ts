import type { EndpointState } from '../types.ts';

/**
 * Draws candidate indexes at random: uniformly when every weight is equal, in
 * proportion to weight otherwise (binary search over cumulative weights). The
 * tables are rebuilt only when the candidate array changes, which the balancer
 * guarantees whenever membership or a weight changes.
 */
export class Sampler {
  #candidates: readonly EndpointState[] | undefined;
  #cumulative: Float64Array = new Float64Array(0);
  #total = 0;
  #uniform = true;

  /** True when every candidate has the same weight. */
  uniform(candidates: readonly EndpointState[]): boolean {
    if (candidates !== this.#candidates) this.#sync(candidates);
    return this.#uniform;
  }

  /** One index. */
  one(candidates: readonly EndpointState[], random: () => number): number {
    if (candidates !== this.#candidates) this.#sync(candidates);
    if (this.#uniform) return Math.floor(random() * candidates.length);
    return this.#weighted(random());
  }

  /** A second index, different from `first` (`candidates` must hold two or more). */
  other(candidates: readonly EndpointState[], first: number, random: () => number): number {
    if (candidates !== this.#candidates) this.#sync(candidates);
    if (!this.#uniform) {
      for (let tries = 0; tries < 3; tries++) {
        const j = this.#weighted(random());
        if (j !== first) return j;
      }
    }
    const j = Math.floor(random() * (candidates.length - 1));
    return j >= first ? j + 1 : j;
  }

  #weighted(r: number): number {
    const cumulative = this.#cumulative;
    const target = r * this.#total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cumulative[mid] as number) > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  #sync(candidates: readonly EndpointState[]): void {
    this.#candidates = candidates;
    const cumulative = new Float64Array(candidates.length);
    let total = 0;
    let uniform = true;
    const first = candidates[0]?.weight;
    for (let i = 0; i < candidates.length; i++) {
      const w = (candidates[i] as EndpointState).weight;
      if (w !== first) uniform = false;
      total += w;
      cumulative[i] = total;
    }
    this.#cumulative = cumulative;
    this.#total = total;
    this.#uniform = uniform;
  }
}
