import { type Clock, systemClock } from '@ballast/common';
import type { HeartbeatSender } from '@ballast/failure-detector';
import {
  type HeartbeatMonitor,
  HeartbeatMonitor as Monitor,
  PhiAccrualDetector,
  type RedisHeartbeatReceiver,
  type RedisPublisher,
  type RedisSubscriber,
  receiveRedisHeartbeats,
  redisHeartbeatSender,
} from '@ballast/failure-detector';

/** Options of {@link Membership}. */
export interface MembershipOptions {
  /** This process's member id. */
  member: string;
  /** Pub/sub channel the heartbeats travel on. */
  channel: string;
  /** Mean time between heartbeats, ms. */
  intervalMs: number;
  /** Silence tolerated on top of the mean interval before a member is suspected, ms (phi accrual's acceptable pause). */
  pauseMs: number;
  /** The connection heartbeats are published on (not one a `WAIT` can block). */
  publisher: RedisPublisher;
  /** Opens a connection for receiving (subscriber mode needs its own). */
  subscriber: () => RedisSubscriber & { disconnect(): void };
  /** Called once per suspicion of another member, while our own heartbeats come back. */
  onGone: (member: string) => void;
  clock?: Clock;
}

/** What {@link Membership.snapshot} reports. */
export interface MembershipSnapshot {
  /** This process's member id. */
  member: string;
  /** True once this member watches the others (it has consumers). */
  watching: boolean;
  /** Members whose heartbeats arrive. */
  alive: string[];
  /** Members suspected while our own heartbeats come back: their jobs are reclaimed, their attended jobs dropped. */
  gone: string[];
}

/**
 * Who is alive among the processes sharing a queue: every member publishes heartbeats
 * (`@ballast/failure-detector`'s Redis transport), and members that watch (the
 * workers) run a phi-accrual {@link HeartbeatMonitor} over them. A member is *gone*
 * when the monitor suspects it **and** our own heartbeats have been coming back for a
 * while: if ours are silent too, the silence is Redis's (a failover, a partition on
 * our side), not the member's, and nothing is reclaimed on its account.
 */
export class Membership {
  readonly member: string;
  readonly #options: MembershipOptions;
  readonly #clock: Clock;
  #sender: HeartbeatSender | undefined;
  #monitor: HeartbeatMonitor | undefined;
  #receiver: Promise<RedisHeartbeatReceiver> | undefined;
  #subscriber: (RedisSubscriber & { disconnect(): void }) | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Since when our own heartbeats have been coming back without a break; undefined while they do not. */
  #selfSince: number | undefined;
  readonly #handled = new Set<string>();
  #closed = false;

  constructor(options: MembershipOptions) {
    this.member = options.member;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Starts publishing this member's heartbeats. Idempotent. */
  announce(): void {
    if (this.#closed || this.#sender) return;
    this.#sender = redisHeartbeatSender({
      redis: this.#options.publisher,
      channel: this.#options.channel,
      id: this.member,
      intervalMs: this.#options.intervalMs,
      timeoutMs: Math.max(this.#options.intervalMs, 1000),
      clock: this.#clock,
    });
  }

  /** Starts watching every member (and announcing this one). Idempotent; resolves once subscribed. */
  watch(): Promise<void> {
    this.announce();
    if (this.#closed) return Promise.resolve();
    if (!this.#receiver) {
      const { intervalMs, pauseMs } = this.#options;
      const monitor = new Monitor({
        detector: () =>
          new PhiAccrualDetector({
            threshold: 8,
            acceptableHeartbeatPauseMs: pauseMs,
            firstHeartbeatEstimateMs: Math.max(1, Math.round(intervalMs)),
            minStdDeviationMs: Math.max(1, intervalMs / 4),
            clock: this.#clock,
          }),
        deadAfterMs: 10_000,
        checkIntervalMs: Math.max(10, Math.min(100, intervalMs / 2)),
        clock: this.#clock,
      });
      monitor.on('join', ({ id, at }) => {
        if (id === this.member) this.#selfSince = at;
      });
      monitor.on('suspect', ({ id }) => {
        if (id === this.member) this.#selfSince = undefined;
      });
      monitor.on('alive', ({ id, at }) => {
        if (id === this.member) this.#selfSince = at;
        else this.#handled.delete(id);
      });
      this.#monitor = monitor;
      this.#subscriber = this.#options.subscriber();
      this.#receiver = receiveRedisHeartbeats(monitor, { redis: this.#subscriber, channel: this.#options.channel });
      this.#timer = setInterval(() => this.#sweep(), Math.max(10, intervalMs));
      this.#timer.unref();
    }
    return this.#receiver.then(() => undefined);
  }

  /**
   * True when `member` is suspected while the channel is known to work. Unknown members
   * (never heard, or forgotten) are not gone: the lease still covers them.
   */
  isGone(member: string): boolean {
    const state = this.#monitor?.state(member);
    return (state === 'suspect' || state === 'dead') && this.#channelWorks();
  }

  /** Members heard from recently, and members found gone (suspected while the channel works). */
  snapshot(): MembershipSnapshot {
    const monitor = this.#monitor;
    if (!monitor) return { member: this.member, watching: false, alive: [], gone: [] };
    const suspected = [...monitor.nodes('suspect'), ...monitor.nodes('dead')];
    return { member: this.member, watching: true, alive: monitor.nodes('alive'), gone: this.#channelWorks() ? suspected : [] };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    const receiver = this.#receiver;
    this.#monitor?.close();
    await Promise.all([
      this.#sender?.close(),
      receiver?.then(
        (r) => r.close(),
        () => undefined,
      ),
    ]);
    this.#subscriber?.disconnect();
  }

  #channelWorks(): boolean {
    const { intervalMs, pauseMs } = this.#options;
    return this.#selfSince !== undefined && this.#clock.now() - this.#selfSince >= pauseMs + 2 * intervalMs;
  }

  #sweep(): void {
    const monitor = this.#monitor;
    if (!monitor || !this.#channelWorks()) return;
    for (const id of [...monitor.nodes('suspect'), ...monitor.nodes('dead')]) {
      if (id === this.member || this.#handled.has(id)) continue;
      this.#handled.add(id);
      this.#options.onGone(id);
    }
    // Forget members dead for long: their jobs are long reclaimed or expired.
    for (const node of monitor.stats().nodes) {
      if (node.state === 'dead' && node.silenceMs > 600_000) {
        monitor.remove(node.id);
        this.#handled.delete(node.id);
      }
    }
  }
}
