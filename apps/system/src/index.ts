export {
  type ChaosOptions,
  type ChaosResult,
  FAULT_KINDS,
  type FaultKind,
  type FaultResult,
  faultSchedule,
  formatSchedule,
  type Invariants,
  type PlannedFault,
  runChaos,
  type Second,
} from './chaos.ts';
export { type Settled, type SettleOptions, settleForChecks, unshippedUnder } from './chaos-drain.ts';
export {
  type Distributed,
  type DistributedOptions,
  startDistributed,
} from './distributed.ts';
export {
  type Attack,
  idleConnections,
  junk,
  repeat,
  type SendOptions,
  send,
  type Upload,
  type UploadOptions,
  upload,
  uploads,
} from './hostile.ts';
export { type StartedIdentity, type StartIdentityOptions, startIdentity } from './identity.ts';
export { type LaunchedTopology, type LaunchOptions, launchDistributed } from './launcher.ts';
export {
  NODE_SERVICES,
  type NodeServiceKind,
  ProcessGuard,
  REPO_ROOT,
  rssBytes,
  type ServiceEvents,
  type ServiceProcess,
  type SpawnServiceOptions,
  spawnService,
} from './processes.ts';
export { type RunningSystem, type SystemOptions, startSystem } from './system.ts';
export {
  CANONICAL_PORTS,
  distributedServices,
  type Infrastructure,
  SERVICE_ENV,
  type ServiceSpec,
  serviceCommand,
  type TopologyOptions,
} from './topology.ts';
