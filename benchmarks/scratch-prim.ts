import { interleaved, bytesPerCall } from './lib/measure.ts';
const value = { status: 200 };
const op = async () => value;
class Ctx { a = 1; b: unknown = undefined; c: unknown = undefined; d = 0; fn: unknown; constructor(fn: unknown) { this.fn = fn; } }
const lay1 = (f: () => Promise<unknown>) => () => new Promise((res, rej) => { f().then(res, rej); });
const lay2 = (f: () => Promise<unknown>) => () => f().then((v) => v, (e) => { throw e; });
const lay3 = (f: () => Promise<unknown>) => async () => await f();
const id = (v: unknown) => v;
const lay4 = (f: () => Promise<unknown>) => () => f().then(id);
const lay5 = (f: () => Promise<unknown>) => () => { const c = new Ctx(f); return f().then((v) => { c.d = 1; return v; }); };
let t = setTimeout(() => {}, 100000);
const nested = (lay: typeof lay1, n: number) => { let f: () => Promise<unknown> = op; for (let i = 0; i < n; i++) f = lay(f); return f; };
const cands: Array<readonly [string, () => Promise<unknown>]> = [
  ['bare', op],
  ['newPromise x1', nested(lay1, 1)],
  ['then2 x1', nested(lay2, 1)],
  ['async x1', nested(lay3, 1)],
  ['then1 x1', nested(lay4, 1)],
  ['ctx+then x1', nested(lay5, 1)],
  ['newPromise x4', nested(lay1, 4)],
  ['then2 x4', nested(lay2, 4)],
  ['async x4', nested(lay3, 4)],
  ['then1 x4', nested(lay4, 4)],
  ['perfnow', () => { performance.now(); return op(); }],
  ['perfnow x4', () => { performance.now(); performance.now(); performance.now(); performance.now(); return op(); }],
  ['ref/unref', () => { t.ref(); t.unref(); return op(); }],
];
const times = await interleaved(cands, { iterations: 20000, rounds: 11 });
const bare = times.get('bare')!.cpuNs;
const bb = await bytesPerCall(op);
for (const [n, f] of cands) console.log(n.padEnd(14), (times.get(n)!.cpuNs - bare).toFixed(0).padStart(6), 'ns', ((await bytesPerCall(f)) - bb).toFixed(0).padStart(6), 'B');
clearTimeout(t);
