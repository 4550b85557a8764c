import { type Clock, durationMs, Emitter, func, type Listener, systemClock, type Unsubscribe } from '@ballast/common';
import type { FailureDetector } from './detector.ts';
import { FailureDetectorError } from './errors.ts';
import { PhiAccrualDetector } from './phi-accrual.ts';

/** Membership state of a node: heard from recently, suspected, or given up on. */
export type NodeState = 'alive' | 'suspect' | 'dead';

/** Options of {@link HeartbeatMonitor}. */
export interface HeartbeatMonitorOptions {
  /**
   * Creates the detector of each node. Detectors are queried with the monitor's clock,
   * so theirs is not used.
   * @default (id) => new PhiAccrualDetector() (Akka's defaults: threshold 8, 3 s pause)
   */
  detector?: (id: string) => FailureDetector;
  /**
   * How long a node stays `suspect` before it is declared `dead`, in milliseconds.
   * @default 10000
   */
  deadAfterMs?: number;
  /**
   * How often every node's suspicion is evaluated, in milliseconds. Adds up to this
   * much to detection time. The timer is unref'd and runs only while nodes are watched.
   * @default 100
   */
  checkIntervalMs?: number;
  /** Time source. @default systemClock (performance.now) */
  clock?: Clock;
}

/** Payload of the `join` event. */
export interface JoinEvent {
  id: string;
  at: number;
}
/** Payload of the `suspect` event: a node's suspicion reached its detector's threshold. */
export interface SuspectEvent {
  id: string;
  at: number;
  /** Suspicion level when the check noticed it. */
  suspicion: number;
  /** Time since the last heartbeat, ms. */
  silenceMs: number;
}
/** Payload of the `dead` event: a node stayed suspect for `deadAfterMs`. */
export interface DeadEvent {
  id: string;
  at: number;
  /** Time since the last heartbeat, ms. */
  silenceMs: number;
}
/** Payload of the `alive` event: a suspect or dead node sent a heartbeat again. */
export interface AliveEvent {
  id: string;
  at: number;
  /** The state it recovered from. */
  from: 'suspect' | 'dead';
  /** How long since it was suspected, ms. */
  downMs: number;
}
/** Payload of the `leave` event: a node was removed. */
export interface LeaveEvent {
  id: string;
  at: number;
  /** Its state when removed. */
  state: NodeState;
}

/** Events of {@link HeartbeatMonitor}, named after the transition. */
export interface HeartbeatMonitorEvents {
  join: JoinEvent;
  suspect: SuspectEvent;
  dead: DeadEvent;
  alive: AliveEvent;
  leave: LeaveEvent;
}

/** One node in {@link HeartbeatMonitorStats}. */
export interface NodeStats {
  id: string;
  state: NodeState;
  /** When the node entered its current state, ms on the monitor's clock. */
  since: number;
  /** When the last heartbeat arrived (or the node was added), ms on the monitor's clock. */
  lastHeartbeatAt: number;
  /** Time since the last heartbeat, ms. */
  silenceMs: number;
  /** The detector's suspicion level now (phi for the accrual detectors). */
  suspicion: number;
  /** Heartbeats received (`add()` alone counts none). */
  heartbeats: number;
}

/** A snapshot returned by {@link HeartbeatMonitor.stats}. */
export interface HeartbeatMonitorStats {
  /** When the snapshot was taken, ms on the monitor's clock. */
  at: number;
  alive: number;
  suspect: number;
  dead: number;
  /** Heartbeats received over the monitor's life. */
  heartbeats: number;
  /** Transitions to `suspect` over the monitor's life (false or not). */
  suspicions: number;
  /** Recoveries (`alive` events) over the monitor's life: with no crash, each was a false suspicion. */
  recoveries: number;
  nodes: NodeStats[];
}

interface Node {
  readonly id: string;
  readonly detector: FailureDetector;
  state: NodeState;
  since: number;
  /** When it was last suspected. */
  downSince: number;
  lastHeartbeatAt: number;
  heartbeats: number;
}

/**
 * Watches many nodes through their heartbeats. Each node gets its own detector; a
 * periodic check moves nodes `alive` → `suspect` when the detector's suspicion reaches
 * its threshold and `suspect` → `dead` after `deadAfterMs`; a heartbeat brings a node
 * back to `alive`. Every transition is an event.
 *
 * Adding a node counts as its first heartbeat, so a node that never speaks is
 * suspected too. A heartbeat from an unknown id adds it.
 *
 * @example
 * ```ts
 * const monitor = new HeartbeatMonitor({ deadAfterMs: 30_000 });
 * monitor.on('suspect', ({ id, silenceMs }) => log.warn({ id, silenceMs }, 'node suspected'));
 * monitor.add('api-1');
 * monitor.heartbeat('api-1'); // whenever a heartbeat arrives
 * monitor.close();
 * ```
 */
export class HeartbeatMonitor implements Disposable {
  /** Time a node stays `suspect` before it is declared `dead`, ms. */
  readonly deadAfterMs: number;
  /** Time between evaluations of every node, ms. */
  readonly checkIntervalMs: number;
  readonly #createDetector: (id: string) => FailureDetector;
  readonly #clock: Clock;
  readonly #events = new Emitter<HeartbeatMonitorEvents>();
  readonly #nodes = new Map<string, Node>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #heartbeats = 0;
  #suspicions = 0;
  #recoveries = 0;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: HeartbeatMonitorOptions = {}) {
    this.#createDetector =
      options.detector === undefined ? () => new PhiAccrualDetector() : func<(id: string) => FailureDetector>('detector', options.detector);
    this.deadAfterMs = durationMs('deadAfterMs', options.deadAfterMs ?? 10_000);
    this.checkIntervalMs = durationMs('checkIntervalMs', options.checkIntervalMs ?? 100, { min: 1 });
    this.#clock = options.clock ?? systemClock;
  }

  /** Subscribes to a transition; returns the unsubscribe function. */
  on<K extends keyof HeartbeatMonitorEvents>(event: K, listener: Listener<HeartbeatMonitorEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /**
   * Starts watching `id`, counting now as its first heartbeat. Returns false if it was
   * already watched.
   * @throws {FailureDetectorError} `ERR_BALLAST_MONITOR_CLOSED` after {@link close}.
   */
  add(id: string): boolean {
    if (this.#closed)
      throw new FailureDetectorError('ERR_BALLAST_MONITOR_CLOSED', `cannot add node ${JSON.stringify(id)}: the monitor is closed`);
    if (this.#nodes.has(id)) return false;
    const at = this.#clock.now();
    const detector = this.#createDetector(id);
    detector.heartbeat(at);
    this.#nodes.set(id, { id, detector, state: 'alive', since: at, downSince: at, lastHeartbeatAt: at, heartbeats: 0 });
    this.#startTimer();
    this.#events.emit('join', { id, at });
    return true;
  }

  /** Stops watching `id`. Returns false if it was not watched. */
  remove(id: string): boolean {
    const node = this.#nodes.get(id);
    if (!node) return false;
    this.#nodes.delete(id);
    if (this.#nodes.size === 0) this.#stopTimer();
    this.#events.emit('leave', { id, at: this.#clock.now(), state: node.state });
    return true;
  }

  /**
   * Records a heartbeat from `id` (adding it if unknown) and brings it back to
   * `alive` if it was suspect or dead. Ignored after {@link close}.
   */
  heartbeat(id: string): void {
    if (this.#closed) return;
    let node = this.#nodes.get(id);
    if (!node) {
      this.add(id);
      node = this.#nodes.get(id);
      if (!node) return; // a join listener removed it
    } else {
      const at = this.#clock.now();
      node.detector.heartbeat(at);
      node.lastHeartbeatAt = at;
      if (node.state !== 'alive') this.#recover(node, at);
    }
    node.heartbeats++;
    this.#heartbeats++;
  }

  /** The state of `id`, or undefined if it is not watched. */
  state(id: string): NodeState | undefined {
    return this.#nodes.get(id)?.state;
  }

  /** The ids of watched nodes, optionally only those in `state`. */
  nodes(state?: NodeState): string[] {
    const ids: string[] = [];
    for (const node of this.#nodes.values()) if (state === undefined || node.state === state) ids.push(node.id);
    return ids;
  }

  /**
   * Evaluates every node now. The monitor does this every `checkIntervalMs` on its
   * own; call it to act on a fresh reading (in tests, or before a routing decision).
   */
  check(): void {
    const at = this.#clock.now();
    for (const node of this.#nodes.values()) {
      switch (node.state) {
        case 'alive':
          if (!node.detector.isAvailable(at)) {
            node.state = 'suspect';
            node.since = at;
            node.downSince = at;
            this.#suspicions++;
            this.#events.emit('suspect', { id: node.id, at, suspicion: node.detector.suspicion(at), silenceMs: at - node.lastHeartbeatAt });
          }
          break;
        case 'suspect':
          if (node.detector.isAvailable(at)) this.#recover(node, at);
          else if (at - node.since >= this.deadAfterMs) {
            node.state = 'dead';
            node.since = at;
            this.#events.emit('dead', { id: node.id, at, silenceMs: at - node.lastHeartbeatAt });
          }
          break;
        case 'dead':
          if (node.detector.isAvailable(at)) this.#recover(node, at);
          break;
        default:
          node.state satisfies never;
      }
    }
  }

  /** A snapshot of every node and of the counters. */
  stats(): HeartbeatMonitorStats {
    const at = this.#clock.now();
    const counts = { alive: 0, suspect: 0, dead: 0 };
    const nodes: NodeStats[] = [];
    for (const node of this.#nodes.values()) {
      counts[node.state]++;
      nodes.push({
        id: node.id,
        state: node.state,
        since: node.since,
        lastHeartbeatAt: node.lastHeartbeatAt,
        silenceMs: at - node.lastHeartbeatAt,
        suspicion: node.detector.suspicion(at),
        heartbeats: node.heartbeats,
      });
    }
    return { at, ...counts, heartbeats: this.#heartbeats, suspicions: this.#suspicions, recoveries: this.#recoveries, nodes };
  }

  /** True after {@link close}. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Stops the check timer, forgets every node and removes every listener. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTimer();
    this.#nodes.clear();
    this.#events.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #recover(node: Node, at: number): void {
    const from = node.state as 'suspect' | 'dead';
    const downMs = at - node.downSince;
    node.state = 'alive';
    node.since = at;
    this.#recoveries++;
    this.#events.emit('alive', { id: node.id, at, from, downMs });
  }

  #startTimer(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.check(), this.checkIntervalMs);
    this.#timer.unref?.();
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
