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
// declare-style: assignments in constructors, private fields only in A
class A2 { declare attempt: number; declare startedAt: number; declare startClock: any; #root: any; #call: any; #parent: any; #firstChild: any; #prev: any; #next: any; #controller: any; #reason: any; #onAbort: any;
  constructor(parent: any, attempt: number, signal?: any, classify?: any, task?: any) { this.attempt = attempt; this.startedAt = 0; this.startClock = undefined; this.#firstChild = undefined; this.#prev = undefined; this.#next = undefined; this.#controller = undefined; this.#reason = 0; this.#onAbort = undefined; if (parent === undefined) { this.#root = this; this.#parent = undefined; this.#call = undefined; return; } this.#root = parent; this.#call = undefined; } }
class B2 extends A2 { declare sink: any; declare resolve: any; declare reject: any; constructor(options: any) { if (options instanceof A2) super(options, 1); else super(undefined, 1); this.sink = undefined; this.resolve = undefined; this.reject = undefined; } }
class C2 extends B2 { declare policy: any; declare fn: any; declare inner: any; declare retryOn: any; declare joined: any; declare deadlineAt: number; declare current: any; declare last: any; declare attempts: number; declare stopReason: any; declare prev: any; declare next: any; declare firstSettled: boolean; declare stamped: boolean; declare expiresAt: number; declare expiryIndex: number; declare later: any;
  constructor(policy: any, fn: any, inner: any, retryOn: any, options: any, joined: any) { super(options); this.policy = policy; this.fn = fn; this.inner = inner; this.retryOn = retryOn; this.joined = joined; this.deadlineAt = 0; this.current = undefined; this.last = undefined; this.attempts = 1; this.stopReason = undefined; this.prev = undefined; this.next = undefined; this.firstSettled = false; this.stamped = true; this.expiresAt = Infinity; this.expiryIndex = -1; this.later = undefined; } }
class Small { resolve: any; reject: any; fn: any; firstSettled = false; a = 0; b = 0; c: any = undefined; d: any = undefined; e: any = undefined; f: any = undefined; constructor(fn: any) { this.fn = fn; } }
function settle(c: any, ok: boolean, v: any) { if (c.firstSettled) return; c.firstSettled = true; ok ? c.resolve(v) : c.reject(v); }
const P = {};
const mk = (make: () => any) => () => { const c = make(); const p = new Promise(EXEC); c.resolve = R; c.reject = J; c.fn(c).then((v: any) => settle(c, true, v), (e: any) => settle(c, false, e)); return p; };
const cands: Array<readonly [string, () => Promise<unknown>]> = [['bare', op], ['small', mk(() => new Small(op))], ['hier', mk(() => new C(P, op, undefined, op, undefined, undefined))], ['hier-declare', mk(() => new C2(P, op, undefined, op, undefined, undefined))]];
const times = await interleaved(cands, { iterations: 20000, rounds: 21 });
const bare = times.get('bare')!.cpuNs;
for (const [n] of cands) console.log(n.padEnd(14), (times.get(n)!.cpuNs - bare).toFixed(0).padStart(6), 'ns');
process.exit(0);
