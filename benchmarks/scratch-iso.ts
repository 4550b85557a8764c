import { interleavedIsolated } from './lib/isolated.ts';
import { NAMES } from './composed/contenders.ts';
const names = (process.env.NAMES ?? '0,1').split(',').map((i) => NAMES[Number(i)]!);
const r = await interleavedIsolated(new URL('./composed/contenders.ts', import.meta.url).href, names, { iterations: 10000, rounds: Number(process.env.ROUNDS ?? 21) });
const bare = r.get(NAMES[0]!)!.cpuNs;
for (const n of names) console.log(n.slice(0, 30).padEnd(32), (r.get(n)!.cpuNs - bare).toFixed(0), r.get(n)!.bytes.toFixed(0));
process.exit(0);
