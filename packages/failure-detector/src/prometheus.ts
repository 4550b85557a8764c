/**
 * Prometheus metrics of heartbeat monitors, through prom-client (an optional peer
 * dependency: only this entry point imports it).
 */
import { ScrapedMetrics, type Unsubscribe } from '@ballast/common';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { HeartbeatMonitor, HeartbeatMonitorStats, NodeState } from './monitor.ts';

/** Options of {@link failureDetectorMetrics}. */
export interface FailureDetectorMetricsOptions {
  /** Prefix of every metric name. @default "ballast_failure_detector_" */
  prefix?: string;
}

/** Registered metrics; `close()` unregisters them and stops listening to the monitors. */
export interface FailureDetectorMetrics extends Disposable {
  close(): void;
}

/** The part of a {@link HeartbeatMonitor} the metrics read. */
export type MeteredMonitor = Pick<HeartbeatMonitor, 'stats' | 'on' | 'heartbeat'>;

const STATES: readonly NodeState[] = ['alive', 'suspect', 'dead'];

/**
 * Exports heartbeat-monitor metrics to a prom-client registry. `monitors` is one monitor
 * (labelled `default`) or monitors by name; the name is the `monitor` label, the node id
 * the `node` label.
 * - `<prefix>phi{monitor,node}` gauge — each node's suspicion level now: phi for
 *   {@link PhiAccrualDetector} and {@link ExponentialDetector}, the detector's own scale
 *   for others (compare it with the detector's threshold);
 * - `<prefix>silence_seconds{monitor,node}` gauge — time since the node's last heartbeat;
 * - `<prefix>state{monitor,node,state}` gauge — 1 for the node's state (`alive`,
 *   `suspect`, `dead`), 0 for the others;
 * - `<prefix>nodes{monitor,state}` gauge — nodes in each state;
 * - `<prefix>heartbeats_total{monitor,node}` counter — heartbeats received from the node;
 * - `<prefix>suspicions_total{monitor}` counter — transitions to `suspect` over the
 *   monitor's life, false or not;
 * - `<prefix>transitions_total{monitor,node,from,to}` counter — state transitions seen
 *   since the metrics were created: `alive`→`suspect`, `suspect`→`dead`, and back to
 *   `alive` from either.
 *
 * Gauges and the first two counters are read from `stats()` at scrape time; transitions
 * are counted from the monitor's events. Nothing is added to the heartbeat path.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { failureDetectorMetrics } from '@ballast/failure-detector/prometheus';
 * const register = new Registry();
 * failureDetectorMetrics(register, { upstreams: monitor });
 * app.get('/metrics', async (c) => c.text(await register.metrics()));
 * ```
 */
export function failureDetectorMetrics(
  register: Registry,
  monitors: MeteredMonitor | Readonly<Record<string, MeteredMonitor>>,
  options: FailureDetectorMetricsOptions = {},
): FailureDetectorMetrics {
  const prefix = options.prefix ?? 'ballast_failure_detector_';
  const named: Array<[string, MeteredMonitor]> = isMonitor(monitors)
    ? [['default', monitors]]
    : Object.entries(monitors as Readonly<Record<string, MeteredMonitor>>);
  const metrics = new ScrapedMetrics<HeartbeatMonitorStats, Registry>({
    classes: { Counter, Gauge },
    registers: [register],
    prefix,
    snapshots: () => named.map(([name, m]) => [name, m.stats()] as const),
  });
  const perNode = ['monitor', 'node'];

  metrics.gauge('phi', "Each node's suspicion level now (phi for the accrual detectors).", perNode, (set, monitor, s) => {
    for (const n of s.nodes) set({ monitor, node: n.id }, n.suspicion);
  });
  metrics.gauge('silence_seconds', "Time since each node's last heartbeat, in seconds.", perNode, (set, monitor, s) => {
    for (const n of s.nodes) set({ monitor, node: n.id }, n.silenceMs / 1000);
  });
  metrics.gauge('state', 'Node state: 1 for the current one, 0 for the others.', [...perNode, 'state'], (set, monitor, s) => {
    for (const n of s.nodes) for (const state of STATES) set({ monitor, node: n.id, state }, n.state === state ? 1 : 0);
  });
  metrics.gauge('nodes', 'Nodes in each state.', ['monitor', 'state'], (set, monitor, s) => {
    for (const state of STATES) set({ monitor, state }, s[state]);
  });
  metrics.counter('heartbeats_total', 'Heartbeats received from each node.', perNode, (set, monitor, s) => {
    for (const n of s.nodes) set({ monitor, node: n.id }, n.heartbeats);
  });
  metrics.counter('suspicions_total', 'Transitions to suspect over the life of the monitor.', ['monitor'], (set, monitor, s) => {
    set({ monitor }, s.suspicions);
  });
  const transitions = new Counter({
    name: `${prefix}transitions_total`,
    help: 'Node state transitions, by node, from and to.',
    labelNames: [...perNode, 'from', 'to'],
    registers: [register],
  });
  const off: Unsubscribe[] = [];
  for (const [monitor, m] of named) {
    off.push(
      m.on('suspect', ({ id }) => transitions.inc({ monitor, node: id, from: 'alive', to: 'suspect' })),
      m.on('dead', ({ id }) => transitions.inc({ monitor, node: id, from: 'suspect', to: 'dead' })),
      m.on('alive', ({ id, from }) => transitions.inc({ monitor, node: id, from, to: 'alive' })),
    );
  }

  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const unsubscribe of off) unsubscribe();
    metrics.close();
    register.removeSingleMetric(`${prefix}transitions_total`);
  };
  return { close, [Symbol.dispose]: close };
}

function isMonitor(value: MeteredMonitor | Readonly<Record<string, MeteredMonitor>>): value is MeteredMonitor {
  return typeof (value as MeteredMonitor).stats === 'function' && typeof (value as MeteredMonitor).heartbeat === 'function';
}
