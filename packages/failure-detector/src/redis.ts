import { func, nonEmptyString } from '@ballast/common';
import { decodeHeartbeat } from './message.ts';
import type { HeartbeatMonitor } from './monitor.ts';
import { HeartbeatSender, type HeartbeatSenderOptions } from './sender.ts';

/** The subset of an ioredis client a publisher needs. */
export interface RedisPublisher {
  publish(channel: string, message: string): Promise<unknown>;
}

/** Options of {@link redisHeartbeatSender}. */
export interface RedisHeartbeatSenderOptions extends HeartbeatSenderOptions {
  /** An ioredis client (any connection not in subscriber mode). Not closed by the sender. */
  redis: RedisPublisher;
  /**
   * Pub/sub channel.
   * @default 'ballast:heartbeats'
   */
  channel?: string;
}

/** The default pub/sub channel of the Redis transport. */
export const DEFAULT_HEARTBEAT_CHANNEL = 'ballast:heartbeats';

/**
 * Starts PUBLISHing `{"id":…,"seq":…}` on a Redis channel every `intervalMs` (with
 * jitter), for services that already share a Redis. Pair with {@link receiveRedisHeartbeats}.
 *
 * @example
 * ```ts
 * const sender = redisHeartbeatSender({ redis, id: 'worker-7' });
 * await sender.close();
 * ```
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function redisHeartbeatSender(options: RedisHeartbeatSenderOptions): HeartbeatSender {
  const channel = nonEmptyString('channel', options.channel ?? DEFAULT_HEARTBEAT_CHANNEL);
  const redis = options.redis;
  func('redis.publish', redis?.publish);
  return new HeartbeatSender(options, async (message, signal) => {
    // ioredis commands cannot be cancelled; the signal bounds how long we wait.
    await Promise.race([redis.publish(channel, JSON.stringify(message)), rejectOnAbort(signal)]);
  });
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * The subset of an ioredis client a receiver needs. Subscribing puts a Redis
 * connection in subscriber mode, so give the receiver a connection of its own
 * (`redis.duplicate()`).
 */
export interface RedisSubscriber {
  subscribe(channel: string): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  on(event: 'message', listener: (channel: string, message: string) => void): unknown;
  off(event: 'message', listener: (channel: string, message: string) => void): unknown;
}

/** Options of {@link receiveRedisHeartbeats}. */
export interface RedisHeartbeatReceiverOptions {
  /** A dedicated ioredis connection (see {@link RedisSubscriber}). Not closed by the receiver. */
  redis: RedisSubscriber;
  /**
   * Pub/sub channel.
   * @default 'ballast:heartbeats'
   */
  channel?: string;
}

/** A snapshot returned by {@link RedisHeartbeatReceiver.stats}. */
export interface RedisHeartbeatReceiverStats {
  /** Heartbeats passed to the monitor. */
  received: number;
  /** Messages on the channel that were not heartbeats. */
  malformed: number;
}

/** Returned by {@link receiveRedisHeartbeats}. */
export interface RedisHeartbeatReceiver extends AsyncDisposable {
  readonly channel: string;
  stats(): RedisHeartbeatReceiverStats;
  /** Unsubscribes and removes the message listener; the connection stays open. Idempotent. */
  close(): Promise<void>;
}

/**
 * Subscribes to a Redis channel and turns every heartbeat published there (by
 * {@link redisHeartbeatSender}) into a heartbeat in `monitor`, timed on the monitor's
 * clock at arrival. Resolves once subscribed. ioredis re-subscribes by itself after a
 * reconnection; heartbeats published meanwhile are lost, which the detectors see as
 * silence.
 *
 * @example
 * ```ts
 * const subscriber = redis.duplicate();
 * const receiver = await receiveRedisHeartbeats(monitor, { redis: subscriber });
 * // on shutdown
 * await receiver.close();
 * subscriber.disconnect();
 * ```
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export async function receiveRedisHeartbeats(
  monitor: Pick<HeartbeatMonitor, 'heartbeat'>,
  options: RedisHeartbeatReceiverOptions,
): Promise<RedisHeartbeatReceiver> {
  func('monitor.heartbeat', monitor?.heartbeat);
  const channel = nonEmptyString('channel', options?.channel ?? DEFAULT_HEARTBEAT_CHANNEL);
  const redis = options.redis;
  func('redis.subscribe', redis?.subscribe);
  let received = 0;
  let malformed = 0;
  const listener = (from: string, text: string): void => {
    if (from !== channel) return;
    const message = decodeHeartbeat(text);
    if (message === undefined) {
      malformed++;
      return;
    }
    received++;
    monitor.heartbeat(message.id);
  };
  redis.on('message', listener);
  try {
    await redis.subscribe(channel);
  } catch (error) {
    redis.off('message', listener);
    throw error;
  }
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      redis.off('message', listener);
      await redis.unsubscribe(channel).catch(() => undefined);
    })());
  return { channel, stats: () => ({ received, malformed }), close, [Symbol.asyncDispose]: close };
}
