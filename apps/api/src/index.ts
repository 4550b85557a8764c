export { Admission, type AdmissionOptions } from './admission.ts';
export { type Api, type ApiOptions, type ApiUsage, type AuthResult, createApi } from './app.ts';
export { statusForFailure } from './http.ts';
export { type UsageRoutesOptions, usageRoutes } from './routes/usage.ts';
