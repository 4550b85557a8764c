import type { Redis } from 'ioredis';

/** Delay before the first reconnect of a client that gave up, doubled per failure up to {@link MAX_DELAY_MS}. */
const FIRST_DELAY_MS = 50;
const MAX_DELAY_MS = 2000;

/**
 * Keeps a connection its owner still uses from giving up for good.
 *
 * ioredis ends a connection (status `end`, every later command rejected with "Connection
 * is closed.") when its Sentinel lookup is interrupted while it reconnects — which is what
 * a failover does: the `+switch-master` notice disconnects the client while it is asking
 * the Sentinels for the new primary, and it never tries again. A queue handle that lived
 * through that would refuse every call until the process restarts. This reconnects such a
 * client with a doubling delay while `isOpen()` says its owner has not closed it (an owner
 * that closes it sets its own flag first, so its deliberate `disconnect()` is left alone).
 *
 * Returns a function that cancels a pending reconnect; call it when the owner closes.
 */
export function reconnectWhenEnded(client: Redis, isOpen: () => boolean): () => void {
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const retry = (): void => {
    timer = undefined;
    if (!isOpen() || client.status !== 'end') return;
    // A failed attempt ends the client again, which schedules the next one.
    client.connect().catch(() => {});
  };
  client.on('ready', () => {
    failures = 0;
  });
  client.on('end', () => {
    if (!isOpen() || timer !== undefined) return;
    timer = setTimeout(retry, Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** failures++));
    timer.unref();
  });
  return () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
}

/**
 * Gives the connections of ioredis's failover detector an `error` listener. With
 * `failoverDetector: true`, every time a Sentinel-managed client connects ioredis opens a
 * connection of its own to each Sentinel to hear `+switch-master`, with no `error`
 * listener: a Sentinel that is down then prints `[ioredis] Unhandled error event: connect
 * ECONNREFUSED` on each of its reconnects. Those connections are made as the client's own
 * connection opens, just before its `connect` event, and fail only later: the listener is
 * in place first. Their failures need no handling (the client still finds the primary
 * through the other Sentinels).
 */
export function quietFailoverDetector(client: Redis): void {
  client.on('connect', () => {
    const connector = (client as unknown as { connector?: { failoverDetector?: { sentinels?: Array<{ client: Redis }> } } }).connector;
    for (const sentinel of connector?.failoverDetector?.sentinels ?? []) {
      if (sentinel.client.listenerCount('error') === 0) sentinel.client.on('error', () => {});
    }
  });
}
