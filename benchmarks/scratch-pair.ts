import { ConcurrencyLimiter } from '@ballast/backpressure';
import { CircuitBreaker } from '@ballast/circuit-breaker';
import { TimeoutPolicy, wrap } from '@ballast/common';
import { RetryPolicy } from '@ballast/retry';
import { bulkhead, circuitBreaker, wrap as cw, ExponentialBackoff, handleAll, retry, SamplingBreaker, TimeoutStrategy, timeout } from 'cockatiel';
import { median, timeBatchAsync } from './lib/measure.ts';
const value = { status: 200 };
const op = async () => value;
const make: Record<string, () => () => Promise<unknown>> = {
  bare: () => op,
  retry: () => { const r = new RetryPolicy({ maxAttempts: 3 }); return () => r.execute(op); },
  'c.retry': () => { const cr = retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }); return () => cr.execute(op); },
  breaker: () => { const b = new CircuitBreaker({ name: 'b', timeoutMs: false }); return () => b.execute(op); },
  breaker10s: () => { const b = new CircuitBreaker({ name: 'b', timeoutMs: 10_000 }); return () => b.execute(op); },
  'c.breaker': () => { const cb = circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }) }); return () => cb.execute(op); },
  limiter: () => { const l = new ConcurrencyLimiter({ limit: 1_000_000 }); return () => l.execute(op); },
  'c.bulkhead': () => { const k = bulkhead(1_000_000); return () => k.execute(op); },
  timeout: () => { const t = new TimeoutPolicy({ timeoutMs: 10_000 }); return () => t.execute(op); },
  chain: () => { const c = wrap(new RetryPolicy({ maxAttempts: 3 }), new CircuitBreaker({ name: 'x', timeoutMs: false }), new ConcurrencyLimiter({ limit: 1_000_000 }), new TimeoutPolicy({ timeoutMs: 10_000 })); return () => c.execute(op); },
  chainNoB: () => { const c = wrap(new RetryPolicy({ maxAttempts: 3 }), new ConcurrencyLimiter({ limit: 1_000_000 }), new ConcurrencyLimiter({ limit: 1_000_000 }), new TimeoutPolicy({ timeoutMs: 10_000 })); return () => c.execute(op); },
  chainNoR: () => { const c = wrap(new ConcurrencyLimiter({ limit: 1_000_000 }), new CircuitBreaker({ name: 'x', timeoutMs: false }), new ConcurrencyLimiter({ limit: 1_000_000 }), new TimeoutPolicy({ timeoutMs: 10_000 })); return () => c.execute(op); },
  chainNoT: () => { const c = wrap(new RetryPolicy({ maxAttempts: 3 }), new CircuitBreaker({ name: 'x', timeoutMs: false }), new ConcurrencyLimiter({ limit: 1_000_000 }), new ConcurrencyLimiter({ limit: 1_000_000 })); return () => c.execute(op); },
  chain4l: () => { const c = wrap(new ConcurrencyLimiter({ limit: 1_000_000 }), new ConcurrencyLimiter({ limit: 1_000_000 }), new ConcurrencyLimiter({ limit: 1_000_000 }), new ConcurrencyLimiter({ limit: 1_000_000 })); return () => c.execute(op); },
  chain2t: () => { const c = wrap(new TimeoutPolicy({ timeoutMs: 10_000 }), new TimeoutPolicy({ timeoutMs: 10_000 })); return () => c.execute(op); },
  chain4t: () => { const c = wrap(new TimeoutPolicy({ timeoutMs: 10_000 }), new TimeoutPolicy({ timeoutMs: 10_000 }), new TimeoutPolicy({ timeoutMs: 10_000 }), new TimeoutPolicy({ timeoutMs: 10_000 })); return () => c.execute(op); },
  'c.chain': () => { const c = cw(retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }), circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }) }), bulkhead(1_000_000), timeout(10_000, TimeoutStrategy.Cooperative)); return () => c.execute(op); },
};
const names = ['bare', ...(process.env.ONLY ?? 'retry,c.retry').split(',')];
const fns = names.map((n) => make[n]!());
const IT = Number(process.env.IT ?? 10000), ROUNDS = Number(process.env.ROUNDS ?? 31);
for (const f of fns) for (let i = 0; i < IT * 2; i++) await f();
const per: number[][] = names.map(() => []);
for (let r = 0; r < ROUNDS; r++) for (let k = 0; k < fns.length; k++) { const j = (k + r) % fns.length; const f = fns[j]!; const t = await timeBatchAsync(async () => { for (let i = 0; i < IT; i++) await f(); }); per[j]!.push(t.cpuNs / IT); }
const over = names.map((_, j) => per[j]!.map((v, r) => v - per[0]![r]!));
const out = names.slice(1).map((n, i) => `${n} ${median(over[i + 1]!).toFixed(0)}`);
const ratios = process.env.PAIRS ? process.env.PAIRS.split(';').map((p) => { const [a, b] = p.split('/'); const ia = names.indexOf(a!), ib = names.indexOf(b!); return `${a}/${b} ${median(over[ia]!.map((v, r) => v / over[ib]![r]!)).toFixed(2)}`; }) : [];
console.log(out.join(' | '), '||', ratios.join(' | '));
process.exit(0);
