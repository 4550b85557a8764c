export { Admission, type AdmissionOptions, type AdmissionSource, type AdmissionStats } from './admission.ts';
export { type Api, type AuthResult, createApi } from './app.ts';
export { apiErrors } from './errors.ts';
export {
  type ApiEnv,
  type ApiOptions,
  type ApiUsage,
  inputFormats,
  type ResizeRequest,
  type ResolvedApiOptions,
  resolveApiOptions,
} from './options.ts';
export { parseResizeQuery } from './params.ts';
export { resultResponse, statusForFailure } from './results.ts';
export { type UsageRoutesOptions, usageRoutes } from './routes/usage.ts';
