export { type StartedIdentity, type StartIdentityOptions, startIdentity } from './identity.ts';
export { type RunningSystem, type SystemOptions, startSystem } from './system.ts';
