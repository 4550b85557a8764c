import { retry, ExponentialBackoff, handleAll } from 'cockatiel';
import { interleaved } from './lib/measure.ts';
import { RetryPolicy } from '@ballast/retry';
const value = { status: 200 };
const op = async () => value;
let R: any, J: any;
const EXEC = (res: any, rej: any) => { R = res; J = rej; };
class Mini { resolve: any; reject: any; fn: any; deadline = 0; idx = -1; settled = false; attempts = 0; a: any; b: any; c: any;
  constructor(fn: any) { this.fn = fn; } }
const heap: any[] = [];
let timer = setTimeout(() => {}, 1e6); timer.unref();
function settle(c: Mini, ok: boolean, v: any) { if (c.settled) return; c.settled = true; heap.pop(); if (heap.length === 0) timer.unref(); ok ? c.resolve(v) : c.reject(v); }
const clock = { now: () => performance.now() };
function mini(withClock: boolean, withHeap: boolean) {
  return () => {
    const c = new Mini(op);
    const p = new Promise(EXEC); c.resolve = R; c.reject = J;
    if (withClock) c.deadline = clock.now() + 30000;
    if (withHeap) { heap.push(c); if (heap.length === 1) timer.ref(); }
    const r = c.fn(c);
    r.then((v: any) => settle(c, true, v), (e: any) => settle(c, false, e));
    return p;
  };
}
const cr = retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() });
const r = new RetryPolicy({ maxAttempts: 3 });
const rInf = new RetryPolicy({ maxAttempts: 3, deadlineMs: Infinity });
const cands: Array<readonly [string, () => Promise<unknown>]> = [
  ['bare', op],
  ['c.retry', () => cr.execute(op)],
  ['mini', mini(false, false)],
  ['mini+clock', mini(true, false)],
  ['mini+clock+heap', mini(true, true)],
  ['ballast', () => r.execute(op)],
  ['ballast noDeadline', () => rInf.execute(op)],
];
const times = await interleaved(cands, { iterations: 20000, rounds: 11 });
const bare = times.get('bare')!.cpuNs;
for (const [n] of cands) console.log(n.padEnd(20), (times.get(n)!.cpuNs - bare).toFixed(0).padStart(6), 'ns');
process.exit(0);
