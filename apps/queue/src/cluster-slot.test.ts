import { describe, expect, it } from 'vitest';
import { clusterSlot, shardTag } from './cluster-slot.ts';

describe('clusterSlot', () => {
  it('matches Redis Cluster’s slots', () => {
    expect(clusterSlot('foo')).toBe(12182); // CLUSTER KEYSLOT foo
    expect(clusterSlot('123456789')).toBe(0x31c3 % 16384); // the CRC16-XMODEM check value
  });
  it('hashes the hash tag alone, when there is one', () => {
    expect(clusterSlot('{user1000}.following')).toBe(clusterSlot('{user1000}.followers'));
    expect(clusterSlot('ballast:{3}:jobs')).toBe(clusterSlot('3'));
    expect(clusterSlot('x{}y')).toBe(clusterSlot('x{}y')); // an empty tag: the whole key
    expect(clusterSlot('x{}y')).not.toBe(clusterSlot(''));
  });
});

describe('shardTag', () => {
  it.each([1, 2, 3, 4, 8])('puts each of %i shards in its own equal slot range', (shards) => {
    for (let i = 0; i < shards; i++) {
      const slot = clusterSlot(shardTag(i, shards));
      expect(slot).toBeGreaterThanOrEqual(Math.floor((i * 16384) / shards));
      expect(slot).toBeLessThan(Math.floor(((i + 1) * 16384) / shards));
    }
  });
});
