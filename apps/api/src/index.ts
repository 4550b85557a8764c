export { Admission, type AdmissionOptions } from './admission.ts';
export { type Api, type ApiOptions, type ApiUsage, type AuthResult, createApi, SHED_HEADER } from './app.ts';
export { clientSignal, errorBody, HttpError, nodeRequest, readBody, requestIdFrom, statusForFailure } from './http.ts';
export { type Listening, listen } from './serve.ts';
export { type AuthenticationOptions, authentication, type Caller, ownedJobId, ownsJob, tenantRateLimit } from './tenancy.ts';
export { type JobSlot, TenantQuotas, type TenantQuotasOptions, type TenantQuotasStats } from './tenant-quota.ts';
