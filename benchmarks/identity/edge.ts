/**
 * One "API server" of the identity benchmark: an edge cache on the Redis feed, in its own
 * process. The parent sends { watch, key, until: 'ok' | 'refused' }; this process checks
 * the key every millisecond and answers { id, at } (epoch ms, fractional) once the decision
 * turns. With DEAF=1 it never subscribes: every publish is lost, only the poll catches up.
 */
import { type ChangeSource, IdentityClient, RedisFeed } from '@ballast/app-identity';

const feed = new RedisFeed({ connection: process.env.REDIS_URL as string });
const deaf = process.env.DEAF === '1';
const source: ChangeSource = deaf
  ? {
      kind: 'redis',
      snapshot: () => feed.snapshot(),
      lookup: (hash) => feed.lookup(hash),
      changesSince: (version) => feed.changesSince(version),
      subscribe: () => () => {},
      close: () => feed.close(),
    }
  : feed;
const client = new IdentityClient({ source });
await feed.ready();
await client.start();
const now = (): number => performance.timeOrigin + performance.now();

process.on('message', (message: { id: number; key: string; until: 'ok' | 'refused' }) => {
  const check = async (): Promise<void> => {
    const decision = await client.verify(`Bearer ${message.key}`);
    const ok = decision.ok;
    if ((message.until === 'ok') === ok) {
      process.send?.({ id: message.id, at: now() });
      return;
    }
    setTimeout(check, 1);
  };
  void check();
});
process.on('disconnect', async () => {
  await client.close();
  await feed.close();
  process.exit(0);
});
process.send?.({ ready: true });
