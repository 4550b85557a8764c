export { CpuMeter, processCpuMs } from './cpu-meter.ts';
export { workerMetrics } from './metrics.ts';
export { lowerPriority } from './priority.ts';
export {
  type ConversionBudget,
  type ConversionEnd,
  type Converted,
  classify,
  conversionTimeoutMs,
  failureDetail,
  ImageError,
  type ImageErrorCode,
  isImageError,
  outputSize,
  type ResizeLimits,
  type ResolvedLimits,
  resizeImage,
  resolveLimits,
} from './resize.ts';
export { type SampleJpegOptions, sampleJpeg } from './sample.ts';
export {
  type JobUsage,
  logWorker,
  ResizeWorker,
  type ResizeWorkerEvents,
  type ResizeWorkerOptions,
  type ResizeWorkerStats,
} from './worker.ts';
