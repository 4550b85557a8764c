import { crc32 } from 'node:zlib';

/**
 * Torn-write-safe framing of the local usage log. Each record is one frame:
 *
 * ```
 * u32 LE  payload length (1 … MAX_FRAME_BYTES)
 * u32 LE  CRC-32 of the length bytes and the payload
 * …       payload (UTF-8 JSON of one record)
 * ```
 *
 * A crash can leave a frame half written (or, after a power cut, garbage where the tail
 * was). Reading stops at the first frame that is incomplete, has an impossible length or
 * a wrong checksum: everything before it is intact, everything from it on is the torn
 * tail that recovery truncates. The checksum covers the length, so a damaged length is
 * caught too.
 */

/** Bytes before each payload. */
export const FRAME_HEADER_BYTES = 8;
/** Largest payload of one frame, bytes (a record is about 500). */
export const MAX_FRAME_BYTES = 65_536;

/** Frames `payload` (at most {@link MAX_FRAME_BYTES}). */
export function encodeFrame(payload: Buffer): Buffer {
  if (payload.byteLength === 0 || payload.byteLength > MAX_FRAME_BYTES) {
    throw new RangeError(`a usage log frame holds 1 to ${MAX_FRAME_BYTES} bytes, got ${payload.byteLength}`);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  frame.writeUInt32LE(payload.byteLength, 0);
  payload.copy(frame, FRAME_HEADER_BYTES);
  frame.writeUInt32LE(crc32(payload, crc32(frame.subarray(0, 4))), 4);
  return frame;
}

/** The intact frames at the start of `buffer`, and where the intact part ends. */
export interface DecodedFrames {
  payloads: Buffer[];
  /** Offsets just past each payload's frame, in `buffer` (the position after frame i). */
  ends: number[];
  /** Bytes of `buffer` covered by intact frames; what follows is torn or not written yet. */
  validBytes: number;
}

/** Reads intact frames from the start of `buffer`, stopping at the first torn or damaged one. */
export function decodeFrames(buffer: Buffer): DecodedFrames {
  const payloads: Buffer[] = [];
  const ends: number[] = [];
  let at = 0;
  while (at + FRAME_HEADER_BYTES <= buffer.byteLength) {
    const length = buffer.readUInt32LE(at);
    if (length === 0 || length > MAX_FRAME_BYTES) break;
    const end = at + FRAME_HEADER_BYTES + length;
    if (end > buffer.byteLength) break;
    const payload = buffer.subarray(at + FRAME_HEADER_BYTES, end);
    if (crc32(payload, crc32(buffer.subarray(at, at + 4))) !== buffer.readUInt32LE(at + 4)) break;
    payloads.push(payload);
    ends.push(end);
    at = end;
  }
  return { payloads, ends, validBytes: at };
}
