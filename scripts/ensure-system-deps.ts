/**
 * Makes sure every system program Ballast's tests run for real is installed. This is
 * the one list of them: `npm test` and CI (`.ci/run`) both install from it, so a test
 * that needs a program never skips for want of it.
 *
 * On a Debian machine running as root it installs what is missing with apt-get (one
 * `apt-get install` for all of it) and stops the services Debian starts on install (the
 * tests start their own on free loopback ports); elsewhere it says exactly what to run, and
 * fails under CI (`CI` set) or lets the other tests run.
 *
 * Usage: node scripts/ensure-system-deps.ts [--list] [program...]
 *   (no program: everything the tests need; `--list` prints the Debian packages and exits;
 *   benchmarks may also ask for benchmark-only programs such as `wrk`)
 *
 * To add a dependency, add one line to {@link DEPENDENCIES}.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** One system program a test (or a benchmark) runs. */
interface Dependency {
  /** The command looked up on PATH. */
  program: string;
  /** The Debian package providing it. */
  debian: string;
  /** Who runs it (shown when it is missing). */
  usedBy: string;
  /** Homebrew formula, when it differs from the Debian package. */
  brew?: string;
  /** A shell command that succeeds when the program is installed off PATH. */
  offPath?: string;
  /** The service Debian starts on install, stopped again: tests start their own. */
  service?: string;
  /** Only benchmarks need it: installed on request, not by `npm test`. */
  benchmarkOnly?: boolean;
}

// biome-ignore format: one line per dependency, so adding one is a one-line change
const DEPENDENCIES: readonly Dependency[] = [
  { program: 'redis-server', debian: 'redis-server', brew: 'redis', service: 'redis-server', usedBy: 'queue, rate-limit, failure-detector and system tests' },
  { program: 'redis-sentinel', debian: 'redis-sentinel', brew: 'redis', service: 'redis-sentinel', usedBy: 'Redis failover tests' },
  { program: 'postgres', debian: 'postgresql', brew: 'postgresql@15', offPath: 'ls /usr/lib/postgresql/*/bin/postgres', service: 'postgresql', usedBy: 'identity and usage tests (@ballast/test/postgres)' },
  { program: 'nginx', debian: 'nginx', service: 'nginx', usedBy: 'balancing harness tests (generated nginx configs)' },
  { program: 'haproxy', debian: 'haproxy', service: 'haproxy', usedBy: 'balancing harness tests (generated HAProxy configs)' },
  { program: 'promtool', debian: 'prometheus', service: 'prometheus', usedBy: 'alert-rule tests' },
  { program: 'chromium', debian: 'chromium', usedBy: 'the dashboard browser test' },
  { program: 'ip', debian: 'iproute2', brew: '', usedBy: 'network-partition tests (ip netns, as root)' },
  { program: 'iptables', debian: 'iptables', brew: '', usedBy: 'network-partition tests (packet drops between namespaces, as root)' },
  { program: 'wrk', debian: 'wrk', benchmarkOnly: true, usedBy: 'live balancing benchmark' },
];

const byProgram = new Map(DEPENDENCIES.map((d) => [d.program, d]));
const args = process.argv.slice(2);
const listOnly = args.includes('--list');
const named = args.filter((a) => a !== '--list');
for (const program of named) {
  if (!byProgram.has(program)) {
    console.error(`ensure-system-deps: unknown program ${JSON.stringify(program)}; known: ${[...byProgram.keys()].join(', ')}`);
    process.exit(2);
  }
}
const wanted = named.length > 0 ? named.map((p) => byProgram.get(p)!) : DEPENDENCIES.filter((d) => !d.benchmarkOnly);

if (listOnly) {
  console.log([...new Set(wanted.map((d) => d.debian))].join(' '));
  process.exit(0);
}

// Debian installs nginx, HAProxy and iptables in /usr/sbin, which a non-root PATH may lack.
const sbinPath = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const has = (d: Dependency): boolean =>
  spawnSync('sh', ['-c', `command -v ${d.program}${d.offPath ? ` || ${d.offPath}` : ''}`], { stdio: 'ignore', env: sbinPath }).status === 0;
const missing = wanted.filter((d) => !has(d));
if (missing.length === 0) process.exit(0);

const packages = [...new Set(missing.map((d) => d.debian))];
const isRoot = process.getuid?.() === 0;
const isDebian = existsSync('/etc/debian_version') && has({ program: 'apt-get', debian: '', usedBy: '' });

if (!isRoot || !isDebian) {
  const brew = [...new Set(missing.map((d) => d.brew ?? d.debian).filter((f) => f !== ''))];
  const ci = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';
  console.error(
    `Missing: ${missing.map((d) => `${d.program} (${d.usedBy})`).join(', ')}.\nBallast's tests run these for real. Install them with:\n` +
      `  sudo apt-get update && sudo apt-get install -y ${packages.join(' ')}   (Debian, Ubuntu)\n` +
      (brew.length > 0 ? `  brew install ${brew.join(' ')}   (macOS)\n` : '') +
      (ci ? '' : 'Going on without them: the tests that need them fail or skip (the closing line counts the skipped).\n'),
  );
  // CI must run every test; a developer may run the rest.
  process.exit(ci ? 1 : 0);
}

console.log(`Installing ${packages.join(', ')} with apt-get...`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const run = (aptArgs: string[]): void => {
  const result = spawnSync('apt-get', aptArgs, { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (result.status !== 0) {
    console.error(`apt-get ${aptArgs.join(' ')} failed with exit code ${result.status}`);
    process.exit(1);
  }
};
run(['update', '-qq']);
run(['install', '-y', '-qq', '--no-install-recommends', ...packages]);
// Debian starts the packaged services on install; tests start their own on free ports.
for (const d of missing) {
  if (d.service) spawnSync('sh', ['-c', `service ${d.service} stop || systemctl stop ${d.service}`], { stdio: 'ignore' });
}
const still = missing.filter((d) => !has(d));
if (still.length > 0) {
  console.error(`Still missing after install: ${still.map((d) => d.program).join(', ')}`);
  process.exit(1);
}
console.log(`Installed ${packages.join(', ')}.`);
