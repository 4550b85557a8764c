/**
 * compose.yaml describes the same deployment as `npm run start:distributed`: the same
 * services, each with the same command, the same `BALLAST_*` variables (after compose's
 * `${VAR}` interpolation) and the same listening ports, and the same Redis and PostgreSQL
 * around them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { distributedServices, REPO_ROOT, SERVICE_ENV, serviceCommand } from '@ballast/app-system';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface ComposeService {
  command?: string[] | string;
  environment?: Record<string, string>;
  expose?: number[];
  depends_on?: string[];
  image?: string;
}

const compose = parse(readFileSync(join(REPO_ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
// What `docker compose` would substitute for the secrets the file leaves to the environment.
const SECRETS: Record<string, string> = {
  BALLAST_POSTGRES_PASSWORD: 'sample-password',
  BALLAST_IDENTITY_ADMIN_TOKEN: 'sample-admin-token-0123',
};
const interpolate = (value: string): string =>
  value.replaceAll(/\$\{(\w+)(?::?[?-][^}]*)?\}/g, (_, name: string) => {
    const v = SECRETS[name];
    if (v === undefined) throw new Error(`compose.yaml interpolates ${name}, which this test does not know`);
    return v;
  });
const specs = distributedServices(
  {
    sentinels: 'sentinel-1:26379,sentinel-2:26379,sentinel-3:26379',
    identityDatabaseUrl: `postgres://ballast:${SECRETS.BALLAST_POSTGRES_PASSWORD}@postgres:5432/identity`,
    usageDatabaseUrl: `postgres://ballast:${SECRETS.BALLAST_POSTGRES_PASSWORD}@postgres:5432/usage`,
    usageRoot: '/var/lib/ballast/usage',
    adminToken: SECRETS.BALLAST_IDENTITY_ADMIN_TOKEN as string,
  },
  { hostOf: (service) => service, bindHost: '0.0.0.0' },
);
const INFRA = ['redis-primary', 'redis-replica-1', 'redis-replica-2', 'sentinel-1', 'sentinel-2', 'sentinel-3', 'postgres'];

describe('compose.yaml and the launcher', () => {
  it('name the same services, and the same Redis and PostgreSQL', () => {
    expect(Object.keys(compose.services).sort()).toEqual([...specs.map((s) => s.name), ...INFRA].sort());
  });

  it.each(specs.map((s) => [s.name, s] as const))('%s: same command, variables and ports', (name, spec) => {
    const service = compose.services[name] as ComposeService;
    expect(service.command).toEqual(['node', ...serviceCommand(spec.kind)]);
    const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));
    expect(env).toEqual(spec.env);
    for (const variable of Object.keys(env)) expect(SERVICE_ENV[spec.kind]).toHaveProperty(variable);
    expect([...(service.expose ?? [])].sort()).toEqual(Object.values(spec.ports).sort());
    for (const dependency of spec.after) expect(service.depends_on).toContain(dependency);
  });

  it('every host a service is told to reach is a service of the file', () => {
    const hosts = new Set<string>();
    for (const spec of specs) {
      for (const value of Object.values(spec.env)) {
        for (const m of value.matchAll(/(?:\/\/|@|^|,)([a-z][\w-]*):\d+/g)) hosts.add(m[1] as string);
      }
    }
    expect([...hosts].filter((h) => !(h in compose.services))).toEqual([]);
    expect(hosts.size).toBeGreaterThan(5);
  });
});
