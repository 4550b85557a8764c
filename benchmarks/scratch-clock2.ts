import { timeBatch, median } from './lib/measure.ts';
let s = 0;
const N = 1_000_000;
const c: Record<string, () => void> = {
  empty: () => { for (let i = 0; i < N; i++) s += i; },
  perf: () => { for (let i = 0; i < N; i++) s += performance.now(); },
  date: () => { for (let i = 0; i < N; i++) s += Date.now(); },
};
const res: Record<string, number[]> = { empty: [], perf: [], date: [] };
for (let r = 0; r < 15; r++) for (const k of Object.keys(c)) res[k]!.push(timeBatch(c[k]!).cpuNs / N);
for (const k of Object.keys(c)) console.log(k, median(res[k]!).toFixed(1), 'ns cpu');
