import { build } from './composed/contenders.ts';
import { bytesPerCall, heapUsed } from './lib/measure.ts';
const c = await build(process.argv[2] ?? 'Ballast wrap(retry, breaker, limiter, timeout)');
console.log('cold', await bytesPerCall(c.op));
for (let i = 0; i < 200000; i++) await c.op();
console.log('warm 200k', await bytesPerCall(c.op));
for (let i = 0; i < 200000; i++) await c.op();
console.log('warm 400k', await bytesPerCall(c.op), await bytesPerCall(c.op, { calls: 20000 }));
process.exit(0);
