/**
 * The equal-weight rendezvous scan in WebAssembly SIMD: four nodes per instruction, two
 * vectors per turn. For a premixed key `k` (see `RendezvousPartitioner`) and premixed node
 * hashes `p[i]`, it finds the node with the highest `fmix32(k ^ p[i])` — the very score the
 * JavaScript loop computes — keeping per lane the highest score and its node index; the
 * caller picks the best of the eight lanes.
 *
 * Memory layout: bytes 0–31 receive the eight lane maxima, 32–63 their node indices, node
 * values start at byte 64, their count padded to a multiple of 8. The module, from this text
 * format:
 *
 * (module
 *   (memory (export "memory") 1)
 *   (func (export "scan") (param $k i32) (param $end i32)
 *     (local $p i32) (local $kv v128) (local $c1 v128) (local $c2 v128) (local $four v128)
 *     (local $max v128) (local $idx v128) (local $cur v128) (local $x v128)
 *     (local $max2 v128) (local $idx2 v128) (local $cur2 v128) (local $y v128)
 *     (local.set $kv (i32x4.splat (local.get $k)))
 *     (local.set $c1 (v128.const i32x4 0x85ebca6b 0x85ebca6b 0x85ebca6b 0x85ebca6b))
 *     (local.set $c2 (v128.const i32x4 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35))
 *     (local.set $four (v128.const i32x4 8 8 8 8))
 *     (local.set $cur (v128.const i32x4 0 1 2 3))
 *     (local.set $cur2 (v128.const i32x4 4 5 6 7))
 *     (local.set $p (i32.const 64))
 *     (loop $l
 *       (local.set $x (i32x4.mul (v128.xor (v128.load (local.get $p)) (local.get $kv)) (local.get $c1)))
 *       (local.set $y (i32x4.mul (v128.xor (v128.load offset=16 (local.get $p)) (local.get $kv)) (local.get $c1)))
 *       (local.set $x (i32x4.mul (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 13))) (local.get $c2)))
 *       (local.set $y (i32x4.mul (v128.xor (local.get $y) (i32x4.shr_u (local.get $y) (i32.const 13))) (local.get $c2)))
 *       (local.set $x (v128.xor (local.get $x) (i32x4.shr_u (local.get $x) (i32.const 16))))
 *       (local.set $y (v128.xor (local.get $y) (i32x4.shr_u (local.get $y) (i32.const 16))))
 *       (local.set $idx (v128.bitselect (local.get $cur) (local.get $idx) (i32x4.gt_u (local.get $x) (local.get $max))))
 *       (local.set $idx2 (v128.bitselect (local.get $cur2) (local.get $idx2) (i32x4.gt_u (local.get $y) (local.get $max2))))
 *       (local.set $max (i32x4.max_u (local.get $x) (local.get $max)))
 *       (local.set $max2 (i32x4.max_u (local.get $y) (local.get $max2)))
 *       (local.set $cur (i32x4.add (local.get $cur) (local.get $four)))
 *       (local.set $cur2 (i32x4.add (local.get $cur2) (local.get $four)))
 *       (br_if $l (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 32))) (local.get $end))))
 *     (v128.store (i32.const 0) (local.get $max))
 *     (v128.store offset=16 (i32.const 0) (local.get $max2))
 *     (v128.store offset=32 (i32.const 0) (local.get $idx))
 *     (v128.store offset=48 (i32.const 0) (local.get $idx2))))
 */
const WASM =
  'AGFzbQEAAAABBgFgAn9/AAMCAQAFAwEAAQcRAgZtZW1vcnkCAARzY2FuAAAKxwIBxAICAX8MeyAA/REhA/0Ma8rrhWvK64Vr' +
  'yuuFa8rrhSEE/Qw1rrLCNa6ywjWussI1rrLCIQX9DAgAAAAIAAAACAAAAAgAAAAhBv0MAAAAAAEAAAACAAAAAwAAACEJ/QwE' +
  'AAAABQAAAAYAAAAHAAAAIQ1BwAAhAgNAIAL9AAQAIAP9USAE/bUBIQogAv0ABBAgA/1RIAT9tQEhDiAKIApBDf2tAf1RIAX9' +
  'tQEhCiAOIA5BDf2tAf1RIAX9tQEhDiAKIApBEP2tAf1RIQogDiAOQRD9rQH9USEOIAkgCCAKIAf9PP1SIQggDSAMIA4gC/08' +
  '/VIhDCAKIAf9uQEhByAOIAv9uQEhCyAJIAb9rgEhCSANIAb9rgEhDSACQSBqIgIgAUkNAAtBACAH/QsEAEEAIAv9CwQQQQAg' +
  'CP0LBCBBACAM/QsEMAs=';

/** Bytes before the node values. */
const HEADER = 64;
const PAGE = 65536;

/** The parts of the WebAssembly API used here (typed locally: the package targets no DOM lib). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { memory: WasmMemory; scan: (key: number, end: number) => void } };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

const wasm = (globalThis as { WebAssembly?: Wasm }).WebAssembly;

let compiled: object | null | undefined;

/** The compiled module, or null where WebAssembly or its SIMD instructions are missing. */
function module(): object | null {
  if (compiled === undefined) {
    try {
      compiled = new wasm!.Module(Uint8Array.from(atob(WASM), (c) => c.charCodeAt(0)));
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

/**
 * One partitioner's copy of its premixed node hashes in WebAssembly memory (64 KiB and up),
 * and the scan over them. Node hashes must be distinct: lanes keep the first highest score.
 */
export class SimdScan {
  readonly #memory: WasmMemory;
  readonly #scan: (key: number, end: number) => void;
  #lanes: Uint32Array;
  #values: Int32Array;
  #count = 0;
  #end = HEADER;

  /** Null where WebAssembly SIMD is unavailable. */
  static create(): SimdScan | null {
    const m = module();
    return m === null ? null : new SimdScan(new wasm!.Instance(m).exports);
  }

  private constructor(exports: { memory: WasmMemory; scan: (key: number, end: number) => void }) {
    this.#memory = exports.memory;
    this.#scan = exports.scan;
    this.#lanes = new Uint32Array(this.#memory.buffer, 0, 16);
    this.#values = new Int32Array(this.#memory.buffer, HEADER);
  }

  /** Copies `count` premixed node hashes in, padding with copies of the first. */
  load(premixed: Int32Array, count: number): void {
    const padded = (count + 7) & ~7;
    const bytes = HEADER + padded * 4;
    if (bytes > this.#memory.buffer.byteLength) {
      this.#memory.grow(Math.ceil((bytes - this.#memory.buffer.byteLength) / PAGE));
      this.#lanes = new Uint32Array(this.#memory.buffer, 0, 16);
      this.#values = new Int32Array(this.#memory.buffer, HEADER);
    }
    this.#values.set(premixed.subarray(0, count));
    this.#values.fill(premixed[0]!, count, padded);
    this.#count = count;
    this.#end = bytes;
  }

  /** The index of the node with the highest score for the premixed key `k`. */
  best(k: number): number {
    this.#scan(k, this.#end);
    const lanes = this.#lanes;
    let lane = 0;
    for (let j = 1; j < 8; j++) if (lanes[j]! > lanes[lane]!) lane = j;
    const index = lanes[8 + lane]!;
    // A padding copy of node 0 scores what node 0 does.
    return index < this.#count ? index : 0;
  }
}
