import { interleaved, bytesPerCall } from './lib/measure.ts';
const value = { status: 200 };
const op = async () => value;
let R: any, J: any;
const EXEC = (res: any, rej: any) => { R = res; J = rej; };
class Small { resolve: any; reject: any; fn: any; settled = false; a = 0; b = 0; c: any = undefined; d: any = undefined; e: any = undefined; f: any = undefined; constructor(fn: any) { this.fn = fn; } }
class Big { resolve: any; reject: any; fn: any; settled = false;
  a1 = 0; a2 = 0; a3: any = undefined; a4: any = undefined; a5: any = undefined; a6: any = undefined; a7 = 0; a8 = 0; a9: any = undefined; a10: any = undefined;
  b1 = 0; b2 = 0; b3: any = undefined; b4: any = undefined; b5: any = undefined; b6: any = undefined; b7 = 0; b8 = 0; b9: any = undefined; b10: any = undefined;
  c1 = 0; c2 = 0; c3: any = undefined; c4: any = undefined; c5: any = undefined; c6: any = undefined; c7 = 0; c8 = 0; c9: any = undefined; c10: any = undefined;
  d1 = 0; d2 = 0; d3: any = undefined; d4: any = undefined; d5: any = undefined; d6: any = undefined; d7 = 0; d8 = 0;
  constructor(fn: any) { this.fn = fn; } }
function settle(c: any, ok: boolean, v: any) { if (c.settled) return; c.settled = true; ok ? c.resolve(v) : c.reject(v); }
const mk = (C: any) => () => { const c = new C(op); const p = new Promise(EXEC); c.resolve = R; c.reject = J; c.fn(c).then((v: any) => settle(c, true, v), (e: any) => settle(c, false, e)); return p; };
const cands: Array<readonly [string, () => Promise<unknown>]> = [['bare', op], ['small', mk(Small)], ['big', mk(Big)]];
const times = await interleaved(cands, { iterations: 20000, rounds: 15 });
const bare = times.get('bare')!.cpuNs; const bb = await bytesPerCall(op);
for (const [n, f] of cands) console.log(n.padEnd(8), (times.get(n)!.cpuNs - bare).toFixed(0).padStart(6), 'ns', ((await bytesPerCall(f)) - bb).toFixed(0), 'B');
process.exit(0);
