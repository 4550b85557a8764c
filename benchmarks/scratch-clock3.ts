import { timeBatch, median } from './lib/measure.ts';
let s = 0; let b = 0n;
const N = 500_000;
const hr = process.hrtime;
const c: Record<string, () => void> = {
  empty: () => { for (let i = 0; i < N; i++) s += i; },
  perf: () => { for (let i = 0; i < N; i++) s += performance.now(); },
  date: () => { for (let i = 0; i < N; i++) s += Date.now(); },
  hrbig: () => { for (let i = 0; i < N; i++) b += process.hrtime.bigint(); },
  hrarr: () => { for (let i = 0; i < N; i++) { const t = hr(); s += t[1]; } },
};
const res: Record<string, number[]> = {};
for (let r = 0; r < 11; r++) for (const k of Object.keys(c)) (res[k] ??= []).push(timeBatch(c[k]!).cpuNs / N);
for (const k of Object.keys(c)) console.log(k, median(res[k]!).toFixed(1), 'ns cpu');
