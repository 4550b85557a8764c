import type { EndpointState, PickContext } from '../types.ts';

/**
 * Draws candidate indexes at random: uniformly when every weight is equal, in
 * proportion to weight otherwise (binary search over cumulative weights). The
 * tables are rebuilt only when the candidate array changes, which the balancer
 * guarantees whenever membership or a weight changes.
 */
export class Sampler {
  readonly #weightOf: (endpoint: EndpointState) => number;
  #candidates: readonly EndpointState[] | undefined;
  #cumulative: Float64Array = new Float64Array(0);
  #total = 0;
  #uniform = true;

  /** @param weightOf an endpoint's weight for sampling. @default its configured weight */
  constructor(weightOf: (endpoint: EndpointState) => number = (e) => e.weight) {
    this.#weightOf = weightOf;
  }

  /** Forgets the tables, for weights that changed without a new candidate array. */
  invalidate(): void {
    this.#candidates = undefined;
  }

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

  /** A second index, different from `first`, drawn the same way among the others (`candidates` must hold two or more). */
  other(candidates: readonly EndpointState[], first: number, random: () => number): number {
    if (candidates !== this.#candidates) this.#sync(candidates);
    if (this.#uniform) {
      const j = Math.floor(random() * (candidates.length - 1));
      return j >= first ? j + 1 : j;
    }
    // Weighted, without replacement: draw over the total minus `first`'s share, then skip it.
    const end = this.#cumulative[first] as number;
    const start = first === 0 ? 0 : (this.#cumulative[first - 1] as number);
    let target = random() * (this.#total - (end - start));
    if (target >= start) target += end - start;
    return this.#locate(target);
  }

  #weighted(r: number): number {
    return this.#locate(r * this.#total);
  }

  /** The index whose cumulative-weight range holds `target`. */
  #locate(target: number): number {
    const cumulative = this.#cumulative;
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
    const first = candidates[0] === undefined ? undefined : this.#weightOf(candidates[0]);
    for (let i = 0; i < candidates.length; i++) {
      const w = this.#weightOf(candidates[i] as EndpointState);
      if (w !== first) uniform = false;
      total += w;
      cumulative[i] = total;
    }
    this.#cumulative = cumulative;
    this.#total = total;
    this.#uniform = uniform;
  }
}

/**
 * Of two candidates scored `scoreA` and `scoreB` (lower is better), the better one; a tie
 * goes to either in proportion to `weightA` and `weightB`, so idle endpoints share
 * traffic by weight.
 */
export function better(
  a: EndpointState,
  scoreA: number,
  weightA: number,
  b: EndpointState,
  scoreB: number,
  weightB: number,
  random: () => number,
): EndpointState {
  if (scoreA !== scoreB) return scoreA < scoreB ? a : b;
  return random() * (weightA + weightB) < weightA ? a : b;
}

/**
 * When slow start declined `a` or `b` on an earlier attempt of this pick, the other one,
 * so two-choice strategies do not hand the warming endpoint straight back; otherwise
 * `undefined`.
 */
function undeclined(a: EndpointState, b: EndpointState, declined: EndpointState | undefined): EndpointState | undefined {
  if (declined === undefined) return undefined;
  return a === declined ? b : b === declined ? a : undefined;
}

/**
 * The frame every two-choice strategy shares (P2C, peak-EWMA, dynamic): two distinct
 * candidates drawn by `sampler`, the one slow start did not decline if it declined the
 * other, else `choose(a, b)`. `choose` is made once per strategy, so a pick allocates nothing.
 */
export function pickOfTwo(
  sampler: Sampler,
  candidates: readonly EndpointState[],
  context: PickContext,
  choose: (a: EndpointState, b: EndpointState, candidates: readonly EndpointState[], context: PickContext) => EndpointState,
): EndpointState {
  if (candidates.length === 1) return candidates[0] as EndpointState;
  const i = sampler.one(candidates, context.random);
  const a = candidates[i] as EndpointState;
  const b = candidates[sampler.other(candidates, i, context.random)] as EndpointState;
  return undeclined(a, b, context.declined) ?? choose(a, b, candidates, context);
}
