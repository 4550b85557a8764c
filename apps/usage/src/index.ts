export { type Sql, type SqlQueryable, sqlString } from '@ballast/app-shared/sql';
export { logDirFor, type UsageConfig, usageConfig } from './config.ts';
export { decodeFrames, encodeFrame, FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from './frame.ts';
export { type TornTail, UsageLog, UsageLogError, type UsageLogEvents, type UsageLogOptions, type UsageLogStats } from './log.ts';
export { type Checkpoint, listSegments, readCheckpoint, segmentName, UsageLogLockedError, unshippedRecords } from './log-dir.ts';
export { type Period, parsePeriod, periodOf } from './period.ts';
export {
  type BillableTotals,
  DEFAULT_PRICES,
  type PriceList,
  parsePriceList,
  priceTotals,
  readPriceList,
  scaledDecimal,
  type UnitPrices,
  unitPrices,
} from './prices.ts';
export {
  ANONYMOUS_TENANT,
  checkRecord,
  type FinishedJob,
  recordIdFor,
  toRecord,
  type UsageOutcome,
  type UsageRecord,
} from './record.ts';
export { adoptOrphans, openRecorder, type Recorder, type RecorderOptions } from './recorder.ts';
export { Shipper, type ShipperEvents, type ShipperOptions, type ShipperStats, type UsageSink } from './shipper.ts';
export { type BillingRun, type InsertResult, openSql, UsageStore, type UsageStoreOptions, type UsageTotals } from './store.ts';
