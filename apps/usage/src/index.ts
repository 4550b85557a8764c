export { decodeFrames, encodeFrame, FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from './frame.ts';
export { UsageLog, UsageLogError, type UsageLogEvents, type UsageLogOptions, type UsageLogStats, type TornTail } from './log.ts';
export { type Checkpoint, listSegments, readCheckpoint, segmentName, UsageLogLockedError } from './log-dir.ts';
export {
  ANONYMOUS_TENANT,
  checkRecord,
  type FinishedJob,
  RECORD_FIELDS,
  recordIdFor,
  toRecord,
  type UsageOutcome,
  type UsageRecord,
} from './record.ts';
export { Shipper, type ShipperEvents, type ShipperOptions, type ShipperStats, type UsageSink } from './shipper.ts';
export { openSql, pgliteClient, postgresClient, type SqlClient, type SqlQuery } from './sql.ts';
export { type BillingRun, type InsertResult, UsageStore, type UsageStoreOptions } from './store.ts';
