/**
 * The heartbeat every transport carries, as JSON: `{"id":"api-1","seq":42}`. Arrival
 * time is what the receiver measures, on its own clock; the sender's clock is never
 * compared with it.
 */
export interface HeartbeatMessage {
  /** The sending node's id. */
  id: string;
  /** Sequence number, from 0, incremented per heartbeat; useful to spot losses. */
  seq: number;
}

/** Largest node id accepted, in characters; longer ones are rejected as malformed. */
export const MAX_NODE_ID_LENGTH = 256;

/** Reads a heartbeat message from a parsed JSON value; undefined when it is malformed. */
export function parseHeartbeat(value: unknown): HeartbeatMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { id, seq } = value as { id?: unknown; seq?: unknown };
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_NODE_ID_LENGTH) return undefined;
  return { id, seq: typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : 0 };
}

/** Reads a heartbeat message from JSON text; undefined when it is malformed. */
export function decodeHeartbeat(text: string): HeartbeatMessage | undefined {
  try {
    return parseHeartbeat(JSON.parse(text));
  } catch {
    return undefined;
  }
}
