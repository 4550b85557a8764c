/**
 * A seeded source of numbers in [0, 1) (mulberry32): small, fast and good enough for
 * simulations, jitter in tests and benchmarks. Two sources with the same seed produce
 * the same sequence, so a seeded run repeats exactly. Not for anything secret.
 *
 * @param seed any number; only its low 32 bits are used.
 * @example
 * ```ts
 * const random = seededRandom(42);
 * new LoadBalancer({ endpoints, random });
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
