import { interleaved, bytesPerCall } from './lib/measure.ts';
const value = { status: 200 };
const op = async () => value;
class Call { resolve: any; reject: any; n = 0; a: unknown = undefined; b: unknown = undefined; }
let R: any, J: any;
const EXEC = (res: any, rej: any) => { R = res; J = rej; };
const settle = (c: Call, ok: boolean, v: unknown) => { c.n++; ok ? c.resolve(v) : c.reject(v); };
const a = () => { const c = new Call(); return new Promise((res, rej) => { c.resolve = res; c.reject = rej; op().then((v) => settle(c, true, v), (e) => settle(c, false, e)); }); };
const b = () => { const c = new Call(); const p = new Promise(EXEC); c.resolve = R; c.reject = J; op().then((v) => settle(c, true, v), (e) => settle(c, false, e)); return p; };
const w = () => { const c = new Call(); const { promise, resolve, reject } = Promise.withResolvers(); c.resolve = resolve; c.reject = reject; op().then((v) => settle(c, true, v), (e) => settle(c, false, e)); return promise; };
async function waiter(c: Call, p: Promise<unknown>) { try { settle(c, true, await p); } catch (e) { settle(c, false, e); } }
const d = () => { const c = new Call(); const p = new Promise(EXEC); c.resolve = R; c.reject = J; waiter(c, op()); return p; };
const e = () => { const c = new Call(); return op().then((v) => { c.n++; return v; }, (e) => { c.n++; throw e; }); };
const cands: Array<readonly [string, () => Promise<unknown>]> = [
  ['bare', op], ['newPromise+closure', a], ['newPromise(EXEC)', b], ['withResolvers', w], ['EXEC+asyncwaiter', d], ['then only', e],
];
const times = await interleaved(cands, { iterations: 20000, rounds: 15 });
const bare = times.get('bare')!.cpuNs;
const bb = await bytesPerCall(op);
for (const [n, f] of cands) console.log(n.padEnd(20), (times.get(n)!.cpuNs - bare).toFixed(0).padStart(6), 'ns', ((await bytesPerCall(f)) - bb).toFixed(0).padStart(6), 'B');
