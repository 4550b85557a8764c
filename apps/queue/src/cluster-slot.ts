/**
 * The Redis Cluster hash slot of a key: CRC16 (XMODEM) of the key, or of its hash tag
 * (the part between the first `{` and the next `}`, when not empty), modulo 16384.
 */
export function clusterSlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

/**
 * The hash tag of shard `index` of `shards`: the first `s<index>-<k>` whose slot lies in
 * the `index`-th of `shards` equal slot ranges. With the slots split evenly over the
 * primaries (as `redis-cli --cluster create` does) and `shards` a multiple of the number
 * of primaries, each primary holds the same number of shards.
 */
export function shardTag(index: number, shards: number): string {
  const from = Math.floor((index * 16384) / shards);
  const to = Math.floor(((index + 1) * 16384) / shards);
  for (let k = 0; ; k++) {
    const tag = `s${index}-${k}`;
    const slot = clusterSlot(tag);
    if (slot >= from && slot < to) return tag;
  }
}
