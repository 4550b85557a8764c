export { Admission, type AdmissionOptions, type AdmissionSource, type AdmissionStats } from './admission.ts';
export { type Api, createApi } from './app.ts';
export { type AuthResult, authenticateWith } from './auth.ts';
export { CostBudget, type CostBudgetCounting, type CostBudgetOptions } from './cost-budget.ts';
export { apiErrors } from './errors.ts';
export {
  FairShare,
  type FairShareClaim,
  type FairShareOptions,
  type FairShareRefusal,
  type FairShareStats,
  fairShareGate,
  fairShareSets,
  jobCostMs,
  UNKNOWN_OUTPUT_PIXELS,
} from './fair-share.ts';
export { type ApiIdentity, apiIdentityFromEnv } from './identity.ts';
export {
  type ApiEnv,
  type ApiOptions,
  type ApiUsage,
  type ResizeRequest,
  type ResolvedApiOptions,
  resolveApiOptions,
} from './options.ts';
export { parseResizeQuery } from './params.ts';
export { resultResponse, statusForFailure } from './results.ts';
export { type UsageRoutesOptions, usageRoutes } from './routes/usage.ts';
export { type HeldSlots, LeasedSlots, type LeasedSlotsOptions, type SlotClaim, type SlotGrant } from './slots.ts';
export {
  type Caller,
  type IdentityAuthenticationOptions,
  identityAuthentication,
  ownedJobId,
  ownsJob,
  tenantJobs,
} from './tenancy.ts';
export { type JobSlot, TenantQuotas, type TenantQuotasOptions, type TenantQuotasStats } from './tenant-quota.ts';
