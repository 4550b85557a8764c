/**
 * Runs every scenario × utilisation × strategy (plus the oracle) through the simulator
 * and returns the results. The package's strategies run inside the package's own
 * `LoadBalancer`, with the simulator's virtual clock and a seeded random source.
 */
import { LoadBalancer } from '@ballast/load-balancer';
import type { StrategyEntry } from '../strategies.ts';
import { oracle } from './oracle.ts';
import { type Scenario, scenarios } from './scenarios.ts';
import { type BalancerFactory, type SimResult, simulate } from './simulate.ts';

export const UTILISATIONS = [0.5, 0.8, 0.95];
export const ORACLE = { id: 'oracle', label: 'oracle (full scan)' };

/**
 * Balancer options used for every strategy: the package defaults, except that an
 * ejection lasts 2 s instead of 30 s so a crashed server's return falls inside a run.
 */
export const BALANCER_OPTIONS = { outlierDetection: { baseEjectionTimeMs: 2_000 } } as const;

export interface SimSettings {
  seed: number;
  durationMs: number;
  warmupMs: number;
  /** Clients give up after this long (see `SimOptions.clientTimeoutMs`), ms. */
  clientTimeoutMs?: number;
}

/** The simulated clients' timeout, ms: 200× the mean service time of the scenarios' servers. */
export const CLIENT_TIMEOUT_MS = 2_000;

export interface SimRun extends SimResult {
  strategy: string;
  utilisation: number;
  wallMs: number;
}

export interface SimScenarioResult {
  name: string;
  title: string;
  description: string;
  servers: string[];
  watch: number | null;
  runs: SimRun[];
}

/** Adapts a package strategy to the simulator: a real LoadBalancer on the virtual clock. */
export function packageBalancer(entry: StrategyEntry): BalancerFactory {
  return ({ endpoints, clock, random }) => {
    const lb = new LoadBalancer({
      endpoints: endpoints.map((e) => ({ id: e.id, address: e.id, weight: e.weight })),
      strategy: entry.make(),
      clock,
      random,
      ...BALANCER_OPTIONS,
    });
    const index = new Map(endpoints.map((e, i) => [e.id, i]));
    return {
      route(key) {
        let handle: ReturnType<LoadBalancer['pick']>;
        try {
          handle = lb.pick({ key });
        } catch {
          return { server: -1, done() {} };
        }
        handle.start();
        return {
          server: index.get(handle.endpoint.id)!,
          done: (ok, latencyMs, load) => handle.done({ ok, latencyMs, load }),
          cancel: () => handle.done({ ok: false, cancelled: true }),
        };
      },
      close: () => lb.close(),
    };
  };
}

export function runSimulation(
  strategies: StrategyEntry[],
  settings: SimSettings,
  log: (line: string) => void = () => {},
  only?: (scenario: Scenario) => boolean,
): SimScenarioResult[] {
  const contenders = [{ id: ORACLE.id, factory: oracle }, ...strategies.map((s) => ({ id: s.id, factory: packageBalancer(s) }))];
  const results: SimScenarioResult[] = [];
  for (const scenario of scenarios) {
    if (only && !only(scenario)) continue;
    const runs: SimRun[] = [];
    const started = performance.now();
    for (const utilisation of UTILISATIONS) {
      for (const c of contenders) {
        const t = performance.now();
        const result = simulate(scenario, utilisation, c.factory, settings);
        runs.push({ strategy: c.id, utilisation, ...result, wallMs: performance.now() - t });
      }
    }
    log(`  ${scenario.name}: ${runs.length} runs in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    results.push({
      name: scenario.name,
      title: scenario.title,
      description: scenario.description,
      servers: scenario.servers.map((s) => s.id),
      watch: scenario.watch ?? null,
      runs,
    });
  }
  return results;
}
