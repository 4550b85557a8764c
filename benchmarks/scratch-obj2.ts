import { interleaved } from './lib/measure.ts';
const value = { status: 200 };
const op = async () => value;
let R: any, J: any;
const EXEC = (res: any, rej: any) => { R = res; J = rej; };
class A { attempt: number; startedAt = 0; startClock: any = undefined; #root: any; #call: any; #parent: any; #firstChild: any = undefined; #prev: any = undefined; #next: any = undefined; #controller: any = undefined; #reason: any = 0; #onAbort: any = undefined;
  constructor(parent: any, attempt: number, signal?: any, classify?: any, task?: any) { this.attempt = attempt; if (parent === undefined) { this.#root = this; this.#parent = undefined; if (signal === undefined && classify === undefined && task === undefined) { this.#call = undefined; return; } this.#call = { signal }; return; } this.#root = parent; this.#call = undefined; } }
class B extends A { sink: any = undefined; resolve: any = undefined; reject: any = undefined; constructor(options: any) { if (options instanceof A) super(options, 1); else super(undefined, 1, options?.signal ?? undefined, options?.classify ?? undefined); } }
class C extends B { policy: any; fn: any; inner: any; retryOn: any; joined: any; deadlineAt = 0; current: any = undefined; last: any = undefined; attempts = 0; stopReason: any = undefined; prev: any = undefined; next: any = undefined; firstSettled = false; stamped = true; expiresAt = Infinity; expiryIndex = -1; #later: any = undefined;
  constructor(policy: any, fn: any, inner: any, retryOn: any, options: any, joined: any) { super(options); this.attempt = 1; this.policy = policy; this.fn = fn; this.inner = inner; this.retryOn = retryOn; this.joined = joined; } }
class Flat { attempt = 1; startedAt = 0; startClock: any = undefined; root: any; call: any; parent: any; firstChild: any = undefined; prev0: any = undefined; next0: any = undefined; controller: any = undefined; reason: any = 0; onAbort: any = undefined;
  sink: any = undefined; resolve: any = undefined; reject: any = undefined;
  policy: any; fn: any; inner: any; retryOn: any; joined: any; deadlineAt = 0; current: any = undefined; last: any = undefined; attempts = 0; stopReason: any = undefined; prev: any = undefined; next: any = undefined; firstSettled = false; stamped = true; expiresAt = Infinity; expiryIndex = -1; later: any = undefined;
  constructor(policy: any, fn: any, inner: any, retryOn: any, options: any, joined: any) { this.root = this; this.policy = policy; this.fn = fn; this.inner = inner; this.retryOn = retryOn; this.joined = joined; } }
class Small { resolve: any; reject: any; fn: any; settled = false; a = 0; b = 0; c: any = undefined; d: any = undefined; e: any = undefined; f: any = undefined; constructor(fn: any) { this.fn = fn; } }
function settle(c: any, ok: boolean, v: any) { if (c.firstSettled) return; c.firstSettled = true; ok ? c.resolve(v) : c.reject(v); }
const P = {};
const mk = (make: () => any) => () => { const c = make(); const p = new Promise(EXEC); c.resolve = R; c.reject = J; c.fn(c).then((v: any) => settle(c, true, v), (e: any) => settle(c, false, e)); return p; };
const cands: Array<readonly [string, () => Promise<unknown>]> = [['bare', op], ['small', mk(() => new Small(op))], ['hier', mk(() => new C(P, op, undefined, op, undefined, undefined))], ['flat', mk(() => new Flat(P, op, undefined, op, undefined, undefined))]];
const times = await interleaved(cands, { iterations: 20000, rounds: 15 });
const bare = times.get('bare')!.cpuNs;
for (const [n] of cands) console.log(n.padEnd(8), (times.get(n)!.cpuNs - bare).toFixed(0).padStart(6), 'ns');
process.exit(0);
