export { type PostgresSqlOptions, pgliteSql, postgresSql, type Sql, type SqlQueryable } from '@ballast/app-shared/sql';
export { type AuthErrorCode, type AuthRefusal, MAX_AUTHORIZATION_LENGTH, parseAuthorization, REFUSALS } from './authorization.ts';
export { runCli } from './cli.ts';
export {
  type AuthDecision,
  type AuthGrant,
  IdentityClient,
  type IdentityClientEvents,
  type IdentityClientOptions,
  type IdentityClientStats,
  type IdentityHealth,
} from './edge-cache.ts';
export { type DemoTenant, type EmbeddedIdentity, type EmbeddedIdentityOptions, startEmbeddedIdentity } from './embedded.ts';
export { type IdentityFromEnv, identityFeedFromEnv, identityFromEnv, redisConnectionFromEnv } from './env.ts';
export {
  type ChangeBatch,
  type ChangeSink,
  type ChangeSource,
  type ChangesSince,
  InProcessFeed,
  type InProcessFeedOptions,
  type Lookup,
  type Snapshot,
} from './feed.ts';
export {
  checkKey,
  DISPLAY_PREFIX_LENGTH,
  displayPrefix,
  type GeneratedKey,
  generateKey,
  hashKey,
  KEY_LENGTH,
  KEY_PREFIX,
  type KeyCheck,
  type KeyShapeProblem,
  redactKeys,
} from './key.ts';
export { type AdminLogEntry, createManagementApi, type ManagementApi, type ManagementApiOptions } from './management.ts';
export { MIGRATIONS, type Migration, migrate } from './migrations.ts';
export {
  type Change,
  IdentityError,
  type IdentityErrorCode,
  isIdentityError,
  type KeyEntry,
  type KeyInfo,
  PLANS,
  type Quota,
  type Tenant,
  type TenantEntry,
} from './model.ts';
export { RedisFeed, type RedisFeedOptions } from './redis-feed.ts';
export { ChangeRelay, type ChangeRelayOptions } from './relay.ts';
export { describeId, IdentityStore, type IssuedKey, type NewTenant, type TenantUpdate } from './store.ts';
