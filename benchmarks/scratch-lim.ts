import { limiterSuccessPath } from './backpressure/admission.ts';
import { printTable } from './lib/report.ts';
printTable('limiter', await limiterSuccessPath(Number(process.env.ROUNDS ?? 11)));
process.exit(0);
