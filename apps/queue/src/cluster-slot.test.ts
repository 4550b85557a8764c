import { describe, expect, it } from 'vitest';
import { clusterSlot } from './cluster-slot.ts';

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
