/**
 * The reference: a full-scan least-loaded balancer with perfect knowledge. It sees every
 * server's exact queue, knows each server's true capacity (concurrency / mean service
 * time) and whether it is up, and sends each request where it expects it to finish
 * soonest. It does not know the future (stalls, which request will be slow), so it is a
 * practical lower bound, not a perfect one.
 */
import type { BalancerFactory, SimBalancer } from './simulate.ts';

export const oracle: BalancerFactory = ({ servers, random }): SimBalancer => {
  const noop = (): void => {};
  return {
    route() {
      let best = -1;
      let bestCost = Number.POSITIVE_INFINITY;
      let ties = 0;
      for (let i = 0; i < servers.length; i++) {
        const s = servers[i]!;
        if (!s.up) continue;
        const cost = ((s.outstanding + 1) * s.meanServiceMs) / s.spec.concurrency;
        if (cost < bestCost) {
          bestCost = cost;
          best = i;
          ties = 1;
        } else if (cost === bestCost && random() * ++ties < 1) {
          best = i;
        }
      }
      return { server: best < 0 ? 0 : best, done: noop };
    },
    close: noop,
  };
};
