/**
 * Makes sure the system programs Ballast's tests run for real are installed:
 * `redis-server`, `redis-sentinel` and PostgreSQL's server (`postgres`), and `nginx`,
 * `haproxy` and `wrk` for the balancing harness tests and the live balancing benchmark. On a
 * Debian machine running as root it installs what is missing with apt-get; elsewhere it says
 * exactly what to run.
 *
 * Usage: node scripts/ensure-system-deps.ts [program...]
 * (default: all of them; ip and iptables only where they can be installed: partition tests skip without them)
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian package providing each program. */
const PACKAGES: Record<string, string> = {
  'redis-server': 'redis-server',
  'redis-sentinel': 'redis-sentinel',
  nginx: 'nginx',
  haproxy: 'haproxy',
  wrk: 'wrk',
  postgres: 'postgresql',
  // Partition tests: network namespaces (ip netns) and packet drops between them.
  ip: 'iproute2',
  iptables: 'iptables',
};

/** Programs Debian installs off PATH: where else to look for them. */
const OFF_PATH: Record<string, string> = {
  postgres: 'ls /usr/lib/postgresql/*/bin/postgres',
};

const wanted =
  process.argv.length > 2
    ? process.argv.slice(2)
    : ['redis-server', 'redis-sentinel', 'postgres', 'nginx', 'haproxy', 'wrk', 'ip', 'iptables'];
for (const program of wanted) {
  if (!(program in PACKAGES)) {
    console.error(`ensure-system-deps: unknown program ${JSON.stringify(program)}; known: ${Object.keys(PACKAGES).join(', ')}`);
    process.exit(2);
  }
}

// Debian installs nginx and HAProxy in /usr/sbin, which a non-root PATH may lack.
const sbinPath = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const has = (program: string): boolean =>
  spawnSync('sh', ['-c', `command -v ${program}${OFF_PATH[program] ? ` || ${OFF_PATH[program]}` : ''}`], { stdio: 'ignore', env: sbinPath })
    .status === 0;
const missing = wanted.filter((program) => !has(program));
if (missing.length === 0) process.exit(0);

const packages = [...new Set(missing.map((program) => PACKAGES[program] as string))];
const isRoot = process.getuid?.() === 0;
const isDebian = existsSync('/etc/debian_version') && has('apt-get');

// Partition tests skip, saying why, where these cannot be installed; nothing else needs them.
const OPTIONAL = new Set(['ip', 'iptables']);
if ((!isRoot || !isDebian) && missing.every((program) => OPTIONAL.has(program))) {
  console.error(
    `Note: ${missing.join(', ')} missing; the queue's partition tests will be skipped (they need root, ip netns and iptables).`,
  );
  process.exit(0);
}

if (!isRoot || !isDebian) {
  console.error(
    `Missing: ${missing.join(', ')}. Ballast's tests run these for real. Install them with:\n` +
      `  sudo apt-get update && sudo apt-get install -y ${packages.join(' ')}   (Debian, Ubuntu)\n` +
      `  brew install ${[...new Set(packages.map((p) => (p.startsWith('redis') ? 'redis' : p === 'postgresql' ? 'postgresql@15' : p)))].join(' ')}   (macOS)`,
  );
  process.exit(1);
}

console.log(`Installing ${packages.join(', ')} with apt-get...`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const run = (args: string[]): void => {
  const result = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (result.status !== 0) {
    console.error(`apt-get ${args.join(' ')} failed with exit code ${result.status}`);
    process.exit(1);
  }
};
run(['update', '-qq']);
run(['install', '-y', '-qq', '--no-install-recommends', ...packages]);
// Debian starts the packaged services on install; tests start their own on free ports.
for (const service of ['redis-server', 'redis-sentinel', 'nginx', 'haproxy', 'postgresql']) {
  if (packages.includes(service)) spawnSync('sh', ['-c', `service ${service} stop || systemctl stop ${service}`], { stdio: 'ignore' });
}
const still = missing.filter((program) => !has(program));
if (still.length > 0) {
  console.error(`Still missing after install: ${still.join(', ')}`);
  process.exit(1);
}
console.log(`Installed ${packages.join(', ')}.`);
