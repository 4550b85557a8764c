export {
  type Distributed,
  type DistributedOptions,
  type ServiceProcess,
  spawnService,
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
export { type RunningSystem, type SystemOptions, startSystem } from './system.ts';
