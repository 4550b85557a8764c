/**
 * The Prometheus rules of the reference system, checked and unit-tested by promtool
 * (Debian's `prometheus` package; `npm test` installs it): the rule files and the scrape
 * configuration parse, every promtool test passes, and every rule has a test.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const dir = fileURLToPath(new URL('../prometheus/', import.meta.url));
const ruleFiles = readdirSync(dir).filter((f) => f.endsWith('.rules.yml'));
const testFiles = readdirSync(`${dir}tests`).filter((f) => f.endsWith('.test.yml'));

function promtool(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8', timeout: 590_000 });
  if (result.error) throw new Error(`promtool could not run (${result.error.message}); run node scripts/ensure-system-deps.ts promtool`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ record?: string; alert?: string; expr: string }> }>;
}
interface TestFile {
  rule_files: string[];
  tests: Array<{
    name?: string;
    alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }>;
    promql_expr_test?: Array<{ expr: string }>;
  }>;
}

const rules = ruleFiles.flatMap((f) => (parse(readFileSync(`${dir}${f}`, 'utf8')) as RuleFile).groups.flatMap((g) => g.rules));
const tests = testFiles.map((f) => parse(readFileSync(`${dir}tests/${f}`, 'utf8')) as TestFile);

describe('Prometheus rules', () => {
  it('parse, with every rule file and the scrape configuration accepted by promtool', () => {
    const checked = promtool('check', 'rules', ...ruleFiles);
    expect(checked.output).not.toContain('FAILED');
    expect(checked.status, checked.output).toBe(0);
    const config = promtool('check', 'config', 'prometheus.yml');
    expect(config.status, config.output).toBe(0);
  });

  // The three-day series take promtool about 6 s of CPU each: tens of seconds of a loaded
  // machine, and past 170 s beside the other suites at a load average of 25.
  it.each(testFiles)('pass the promtool tests in %s', { timeout: 600_000 }, (file) => {
    const result = promtool('test', 'rules', `tests/${file}`);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
  });

  it('each have a test: every alert fires in one case and stays silent in another, every recording is evaluated', () => {
    const firing = new Set<string>();
    const silent = new Set<string>();
    const exprs: string[] = [];
    for (const file of tests) {
      for (const t of file.tests) {
        for (const a of t.alert_rule_test ?? []) (a.exp_alerts.length > 0 ? firing : silent).add(a.alertname);
        for (const p of t.promql_expr_test ?? []) exprs.push(p.expr);
      }
    }
    const alerts = rules.flatMap((r) => (r.alert ? [r.alert] : []));
    const records = rules.flatMap((r) => (r.record ? [r.record] : []));
    expect(alerts.length).toBeGreaterThan(10);
    expect(alerts.filter((a) => !firing.has(a))).toEqual([]);
    expect(alerts.filter((a) => !silent.has(a))).toEqual([]);
    expect(
      records.filter((r) => !exprs.some((e) => new RegExp(`(^|[^\\w:])${r.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\w:])`).test(e))),
    ).toEqual([]);
  });

  it('page on a burst of failures and on nothing in a healthy run (the SLO goals)', () => {
    const slo = tests.flatMap((f) => f.tests);
    const burst = slo.find((t) => t.name?.startsWith('a burst of failures'));
    const pages = (burst?.alert_rule_test ?? []).filter((a) => a.alertname === 'BallastYieldBudgetBurn1h' && a.exp_alerts.length > 0);
    expect(pages.length).toBeGreaterThan(0);
    const healthy = slo.find((t) => t.name?.startsWith('a healthy run'));
    const cases = healthy?.alert_rule_test ?? [];
    expect(cases.length).toBeGreaterThanOrEqual(rules.filter((r) => r.alert).length);
    expect(cases.every((a) => a.exp_alerts.length === 0)).toBe(true);
  });
});
