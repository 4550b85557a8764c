/** The hash slot of a key in Redis Cluster (CRC16 of the hash tag or key, mod 16384); the module ioredis itself uses. */
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string | Buffer): number;
}
