import { describe, expect, it } from 'vitest';
import { FAULT_KINDS, faultSchedule, formatSchedule } from './chaos.ts';
import { distributedServices, type Infrastructure, SERVICE_ENV } from './topology.ts';

const infra: Infrastructure = {
  sentinels: '127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381',
  identityDatabaseUrl: 'postgres://postgres@127.0.0.1:5432/identity',
  usageDatabaseUrl: 'postgres://postgres@127.0.0.1:5432/usage',
  usageRoot: '/var/lib/ballast/usage',
  adminToken: 'an-admin-token-of-32-characters!',
};

describe('distributedServices', () => {
  it('lists the management plane, workers with their shippers, API servers and the gateway, in start order', () => {
    const specs = distributedServices(infra, { apis: 2, workers: 3 });
    expect(specs.map((s) => s.name)).toEqual([
      'identity',
      'worker-1',
      'usage-shipper-1',
      'worker-2',
      'usage-shipper-2',
      'worker-3',
      'usage-shipper-3',
      'api-1',
      'api-2',
      'gateway',
    ]);
    const gateway = specs.find((s) => s.name === 'gateway');
    expect(gateway?.env.BALLAST_GATEWAY_UPSTREAMS).toBe('http://127.0.0.1:8081,http://127.0.0.1:8082');
    expect(specs.find((s) => s.name === 'api-2')?.env.BALLAST_API_WORKER_SLOTS).toBe('3');
    // A worker and its shipper share the log root; no two workers do.
    const roots = specs.filter((s) => s.kind === 'worker').map((s) => s.env.BALLAST_USAGE_DIR);
    expect(new Set(roots).size).toBe(3);
    expect(specs.find((s) => s.name === 'usage-shipper-2')?.env.BALLAST_USAGE_DIR).toBe(roots[1]);
  });

  it('gives every service only variables its kind reads', () => {
    for (const spec of distributedServices(infra, { env: { BALLAST_LOG_LEVEL: 'info', BALLAST_QUEUE_LEASE_MS: '5000' } })) {
      for (const name of Object.keys(spec.env))
        expect(name === 'BALLAST_LOG_LEVEL' || name in SERVICE_ENV[spec.kind], `${spec.name}: ${name}`).toBe(true);
      expect(spec.env.BALLAST_LOG_LEVEL).toBe('info');
    }
    const shipper = distributedServices(infra).find((s) => s.kind === 'usage-shipper');
    expect(shipper?.env).not.toHaveProperty('BALLAST_QUEUE_LEASE_MS');
  });

  it('asks the port allocator for each listener', () => {
    let next = 40_000;
    const specs = distributedServices(infra, { port: () => next++ });
    const ports = specs.flatMap((s) => Object.values(s.ports));
    expect(new Set(ports).size).toBe(ports.length);
    expect(Math.min(...ports)).toBe(40_000);
  });

  it('refuses bad counts and a configuration a service would refuse, naming what is wrong', () => {
    expect(() => distributedServices(infra, { apis: 0 })).toThrow(/apis/);
    expect(() => distributedServices(infra, { workers: 1.5 })).toThrow(/workers/);
    expect(() => distributedServices({ ...infra, adminToken: 'short' })).toThrow(/adminToken/);
    expect(() => distributedServices({ ...infra, identityDatabaseUrl: 'mysql://x' })).toThrow(/BALLAST_IDENTITY_DATABASE_URL/);
    expect(() => distributedServices({ ...infra, sentinels: 'nohost' })).toThrow(/BALLAST_REDIS_SENTINELS/);
  });
});

describe('faultSchedule', () => {
  it('is the same for the same seed, and another for another seed', () => {
    const a = faultSchedule(7, 600_000, FAULT_KINDS);
    expect(faultSchedule(7, 600_000, FAULT_KINDS)).toEqual(a);
    expect(faultSchedule(8, 600_000, FAULT_KINDS)).not.toEqual(a);
    expect(a.map((f) => f.kind).sort()).toEqual([...FAULT_KINDS].sort());
  });

  it('spreads the faults over the middle of the run, in order, on existing targets', () => {
    const schedule = faultSchedule(1, 100_000, FAULT_KINDS, { apis: 2, workers: 1 });
    const times = schedule.map((f) => f.atMs);
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(10_000);
    expect(Math.max(...times)).toBeLessThan(80_000);
    for (const f of schedule) expect(['api-1', 'api-2', 'worker-1', 'redis-primary', 'postgres', 'identity']).toContain(f.target);
    expect(formatSchedule(1, schedule)).toContain('--seed=1');
  });

  it('refuses an unknown fault, naming it', () => {
    expect(() => faultSchedule(1, 60_000, ['kill-everything' as never])).toThrow(/kill-everything/);
  });
});
