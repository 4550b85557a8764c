import { measure } from './lib/measure.ts';
let s = 0;
const rows = [
  measure('performance.now', () => { s += performance.now(); }, { iterations: 2_000_000, samples: 9 }),
  measure('Date.now', () => { s += Date.now(); }, { iterations: 2_000_000, samples: 9 }),
  measure('hrtime.bigint', () => { s += Number(process.hrtime.bigint()) / 1e6; }, { iterations: 2_000_000, samples: 9 }),
  measure('hrtime', () => { const h = process.hrtime(); s += h[0] * 1e3 + h[1] / 1e6; }, { iterations: 2_000_000, samples: 9 }),
  measure('empty', () => { s += 1; }, { iterations: 2_000_000, samples: 9 }),
];
for (const r of rows) console.log(r.name.padEnd(18), r.nsPerOp.toFixed(1));
console.log(s > 0);
