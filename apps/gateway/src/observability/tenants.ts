import { integer } from '@ballast/common';

const TENANT = /^[\w.@:-]{1,64}$/;

/**
 * Per-tenant metric labels with bounded cardinality: `anonymous` (no tenant known) and the
 * first `maxTenants` tenants seen get a label of their own, every later one is counted as `other` (and a tenant header
 * that is not a plain token as `invalid`), so a flood of tenants cannot flood Prometheus
 * with series. Restarting the gateway starts the choice afresh.
 */
export class TenantLabels {
  readonly maxTenants: number;
  readonly #known = new Set<string>();

  /** @param maxTenants tenants with a label of their own. @default 20 */
  constructor(maxTenants = 20) {
    this.maxTenants = integer('maxTenants', maxTenants, { min: 0, max: 10_000 });
  }

  /** The label for `tenant` (`anonymous` when unknown). */
  label(tenant: string | null | undefined): string {
    if (tenant === null || tenant === undefined || tenant === '' || tenant === 'anonymous') return 'anonymous';
    if (!TENANT.test(tenant)) return 'invalid';
    if (this.#known.has(tenant)) return tenant;
    if (this.#known.size >= this.maxTenants) return 'other';
    this.#known.add(tenant);
    return tenant;
  }
}
