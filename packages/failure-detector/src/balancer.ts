import { oneOf } from '@ballast/common';
import type { HeartbeatMonitor, NodeState } from './monitor.ts';

/**
 * What a load balancer needs to offer to be steered by a {@link HeartbeatMonitor}: a way
 * to take an endpoint out of rotation and to put it back. `@ballast/load-balancer`
 * matches it structurally, and so can any balancer of your own.
 */
export interface BalancerControl {
  /** Stop sending traffic to endpoint `id`. */
  markDown(id: string, reason?: string): unknown;
  /** Send traffic to endpoint `id` again. */
  markUp(id: string): unknown;
}

/** Options of {@link connectBalancer}. */
export interface ConnectBalancerOptions {
  /**
   * The state at which an endpoint leaves rotation: `suspect` (as soon as the detector
   * suspects it) or `dead` (only once it is declared dead).
   * @default 'suspect'
   */
  downOn?: 'suspect' | 'dead';
}

/** Returned by {@link connectBalancer}. */
export interface BalancerConnection extends Disposable {
  /** Stops steering the balancer. Endpoints keep their current up/down marks. Idempotent. */
  close(): void;
}

/**
 * Keeps a balancer in step with a monitor: endpoints the monitor suspects (or declares
 * dead, with `downOn: 'dead'`) are marked down with a reason, and marked up again on
 * their next heartbeat. Node ids are used as endpoint ids. Nodes already down when
 * connecting are marked down at once.
 *
 * @example
 * ```ts
 * const monitor = new HeartbeatMonitor();
 * const connection = connectBalancer(monitor, balancer);
 * // …
 * connection.close();
 * ```
 * @throws {InvalidOptionError} when `downOn` is not `suspect` or `dead`.
 */
export function connectBalancer(
  monitor: HeartbeatMonitor,
  balancer: BalancerControl,
  options: ConnectBalancerOptions = {},
): BalancerConnection {
  const downOn = oneOf('downOn', options.downOn ?? 'suspect', ['suspect', 'dead'] as const);
  const downStates: readonly NodeState[] = downOn === 'suspect' ? ['suspect', 'dead'] : ['dead'];
  for (const state of downStates) for (const id of monitor.nodes(state)) balancer.markDown(id, `failure detector: ${state}`);
  const unsubscribes = [
    monitor.on(downOn, ({ id, silenceMs }) => balancer.markDown(id, `failure detector: ${downOn}, silent for ${Math.round(silenceMs)} ms`)),
    monitor.on('alive', ({ id, from }) => {
      if (downStates.includes(from)) balancer.markUp(id);
    }),
  ];
  const close = (): void => {
    for (const unsubscribe of unsubscribes.splice(0)) unsubscribe();
  };
  return { close, [Symbol.dispose]: close };
}
