/**
 * @ballast/partitioning: which cache node owns which key. Every strategy maps 100,000
 * keys over 4 nodes; then a fifth node joins, and only the keys it now owns move.
 *
 *   npm run example -- partitioning             (in the Ballast repository)
 *   node partitioning.ts                        (in your project: npm i @ballast/partitioning)
 */
import { createPartitioner, loadBalance, movement, restorePartitioner } from '@ballast/partitioning';

const nodes = ['cache-a', 'cache-b', 'cache-c', 'cache-d'];
const keys = Array.from({ length: 100_000 }, (_, i) => `user:${i}`);

for (const strategy of ['ring', 'jump', 'rendezvous', 'maglev'] as const) {
  const shards = createPartitioner({ strategy, nodes });
  const before = restorePartitioner(shards.toJSON()); // a copy, as another process would hold it
  const balance = loadBalance(shards, keys);
  shards.add('cache-e');
  const moved = movement(before, shards, keys);
  console.log(
    `${strategy.padEnd(10)} peak/mean ${balance.peakToMean.toFixed(3)}  ` +
      `keys moved when cache-e joined: ${(moved.fraction * 100).toFixed(1)}% (the least possible: ${(moved.idealFraction * 100).toFixed(1)}%)`,
  );
}

// Every process that knows the same nodes agrees on every key: the state travels as JSON.
const shards = createPartitioner({ strategy: 'ring', nodes: ['cache-a', 'cache-b', { id: 'cache-c', weight: 2 }] });
const elsewhere = restorePartitioner(JSON.parse(JSON.stringify(shards)));
console.log(`user:42 -> ${shards.owner('user:42')}, the same elsewhere: ${elsewhere.owner('user:42') === shards.owner('user:42')}`);
console.log(`replicas of user:42: ${shards.preferenceList('user:42', 2).join(', ')}`);
