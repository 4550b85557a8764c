import { BallastError, isBallastError } from '@ballast/common';

/** What a tenant may use. */
export interface Quota {
  /** Sustained requests per second (bursts up to one second's worth). */
  readonly requestsPerSecond: number;
  /** Jobs waiting or in progress at once, across every API server. */
  readonly concurrentJobs: number;
  /** CPU-seconds of conversion per calendar month (billing reads it; not enforced per request). */
  readonly monthlyCpuSeconds: number;
}

/** A tenant as the management plane returns it. */
export interface Tenant {
  readonly id: string;
  readonly name: string;
  readonly plan: string;
  readonly quota: Quota;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Version of the last change to this tenant. */
  readonly version: number;
}

/** An API key's metadata: never the key, only its display prefix. */
export interface KeyInfo {
  readonly id: string;
  readonly tenantId: string;
  /** `blst_` and the next 4 characters. */
  readonly prefix: string;
  readonly name: string;
  readonly status: 'active' | 'revoked';
  readonly createdAt: string;
  readonly revokedAt: string | null;
  readonly version: number;
}

/** A key as the data plane knows it: its hash, its tenant, whether it is revoked, and the version of that fact. */
export interface KeyEntry {
  readonly kind: 'key';
  /** SHA-256 of the key, hex. */
  readonly hash: string;
  readonly keyId: string;
  readonly tenantId: string;
  readonly prefix: string;
  readonly status: 'active' | 'revoked';
  readonly version: number;
}

/** A tenant as the data plane knows it. */
export interface TenantEntry {
  readonly kind: 'tenant';
  readonly id: string;
  readonly name: string;
  readonly plan: string;
  readonly quota: Quota;
  readonly version: number;
}

/** One change published to the data plane; `version` orders every change of every kind. */
export type Change = KeyEntry | TenantEntry;

/** The built-in plans; a tenant's quota starts from its plan and may be set per tenant. */
export const PLANS: Readonly<Record<string, Quota>> = Object.freeze({
  free: Object.freeze({ requestsPerSecond: 5, concurrentJobs: 2, monthlyCpuSeconds: 3_600 }),
  pro: Object.freeze({ requestsPerSecond: 50, concurrentJobs: 16, monthlyCpuSeconds: 360_000 }),
  enterprise: Object.freeze({ requestsPerSecond: 500, concurrentJobs: 128, monthlyCpuSeconds: 36_000_000 }),
});

/** Error codes of the identity app. */
export type IdentityErrorCode =
  | 'ERR_BALLAST_INVALID_OPTION'
  | 'ERR_BALLAST_BODY_TOO_LARGE'
  | 'ERR_BALLAST_CONTENT_TYPE'
  | 'ERR_BALLAST_NOT_FOUND'
  | 'ERR_BALLAST_CONFLICT'
  | 'ERR_BALLAST_IDENTITY_STORE_UNAVAILABLE';

/** An error of the management plane, answered with `status` and `{ error: { code, message } }`. */
export class IdentityError extends BallastError {
  override readonly code: IdentityErrorCode;
  readonly status: 400 | 404 | 409 | 413 | 415 | 503;
  constructor(status: 400 | 404 | 409 | 413 | 415 | 503, code: IdentityErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.code = code;
    this.status = status;
  }
}

/** True for an {@link IdentityError} from any copy of this app. */
export function isIdentityError(value: unknown): value is IdentityError {
  return isBallastError(value) && typeof (value as { status?: unknown }).status === 'number';
}
