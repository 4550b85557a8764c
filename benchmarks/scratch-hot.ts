import { ConcurrencyLimiter } from '@ballast/backpressure';
import { CircuitBreaker } from '@ballast/circuit-breaker';
import { TimeoutPolicy, wrap } from '@ballast/common';
import { RetryPolicy } from '@ballast/retry';
import { bulkhead, circuitBreaker, wrap as cw, ExponentialBackoff, handleAll, retry, SamplingBreaker, TimeoutStrategy, timeout } from 'cockatiel';
import { bytesPerCall, interleaved, loadAverage } from './lib/measure.ts';

const value = { status: 200 };
const op = async () => value;
const only = process.env.ONLY?.split(',');
const r = new RetryPolicy({ maxAttempts: 3 });
const b = new CircuitBreaker({ name: 'bench', timeoutMs: false });
const b10 = new CircuitBreaker({ name: 'bench10', timeoutMs: 10_000 });
const l = new ConcurrencyLimiter({ limit: 1_000_000 });
const t = new TimeoutPolicy({ timeoutMs: 10_000 });
const chain = wrap(new RetryPolicy({ maxAttempts: 3 }), new CircuitBreaker({ name: 'x', timeoutMs: false }), new ConcurrencyLimiter({ limit: 1_000_000 }), new TimeoutPolicy({ timeoutMs: 10_000 }));
const chain4t = wrap(new TimeoutPolicy({ timeoutMs: 10_000 }), new TimeoutPolicy({ timeoutMs: 10_000 }), new TimeoutPolicy({ timeoutMs: 10_000 }), new TimeoutPolicy({ timeoutMs: 10_000 }));
const cr = retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() });
const cb = circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }) });
const ck = bulkhead(1_000_000);
const ct = timeout(10_000, TimeoutStrategy.Cooperative);
const cchain = cw(retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }), circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }) }), bulkhead(1_000_000), timeout(10_000, TimeoutStrategy.Cooperative));
const all: Array<readonly [string, () => Promise<unknown>]> = [
  ['bare', op],
  ['retry', () => r.execute(op)],
  ['c.retry', () => cr.execute(op)],
  ['breaker', () => b.execute(op)],
  ['breaker10s', () => b10.execute(op)],
  ['c.breaker', () => cb.execute(op)],
  ['limiter', () => l.execute(op)],
  ['c.bulkhead', () => ck.execute(op)],
  ['timeout', () => t.execute(op)],
  ['c.timeout', () => ct.execute(op)],
  ['chain', () => chain.execute(op)],
  ['chain4t', () => chain4t.execute(op)],
  ['c.chain', () => cchain.execute(op)],
];
const cands = all.filter(([n]) => n === 'bare' || !only || only.includes(n));
if (process.env.PROFILE) {
  const [, f] = cands[1]!;
  for (let i = 0; i < Number(process.env.PROFILE); i++) await f();
  process.exit(0);
}
const times = await interleaved(cands, { iterations: Number(process.env.IT ?? 10000), rounds: Number(process.env.ROUNDS ?? 11) });
const bare = times.get('bare')!.cpuNs;
const bareBytes = await bytesPerCall(op);
for (const [n, f] of cands) console.log(n.padEnd(12), (times.get(n)!.cpuNs - bare).toFixed(0).padStart(6), 'ns', ((await bytesPerCall(f)) - bareBytes).toFixed(0).padStart(6), 'B');
console.log('load', loadAverage().join(' '));
process.exit(0);
