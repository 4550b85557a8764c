/**
 * Load and failure scenarios for the queue (`@ballast/app-queue/testing`): used by its
 * own tests and by `npm run bench:queue`. Not part of the queue's API.
 */
export { type CycleOptions, type CycleReport, consumeNoOp, percentile, produceCycles, runCycles } from './cycle.ts';
export {
  createRedisNetwork,
  type PartitionReport,
  type PartitionScenarioOptions,
  type RedisNetwork,
  runPartitionScenario,
} from './partition.ts';
export { type PowerCutReport, runPowerCutScenario } from './power-cut.ts';
export { startWorkload, type Workload, type WorkloadOptions, type WorkloadVerdict } from './workload.ts';
