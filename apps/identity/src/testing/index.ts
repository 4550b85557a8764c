/**
 * Fixtures for tests and benchmarks of identity (`@ballast/app-identity/testing`). Not part
 * of the app's API.
 */
export { type AdminAnswer, type IdentityPlane, type IdentityPlaneOptions, startIdentityPlane } from './plane.ts';
