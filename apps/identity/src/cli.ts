/**
 * The identity CLI: a thin client of the management plane's HTTP API.
 *
 *   npm run identity -- create-tenant <name> [--plan free|pro|enterprise] [--rps N] [--jobs N] [--cpu-seconds N]
 *   npm run identity -- issue-key <tenant-id> [--name <label>]
 *   npm run identity -- revoke-key <key-id>
 *   npm run identity -- list-tenants | list-keys <tenant-id> | change-plan <tenant-id> <plan>
 *
 * It talks to BALLAST_IDENTITY_URL with BALLAST_IDENTITY_ADMIN_TOKEN; without them, to the
 * management plane `npm start` runs (it writes both to .ballast/identity.json).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = `usage: npm run identity -- <command> [arguments]

  create-tenant <name> [--plan free|pro|enterprise] [--rps N] [--jobs N] [--cpu-seconds N]
  issue-key <tenant-id> [--name <label>]      prints the key: the only time it is shown
  revoke-key <key-id>
  change-plan <tenant-id> <plan>
  list-tenants
  list-keys <tenant-id>

Environment: BALLAST_IDENTITY_URL, BALLAST_IDENTITY_ADMIN_TOKEN (default: the management plane of a running \`npm start\`).`;

interface Target {
  url: string;
  adminToken: string;
}

/** Runs one CLI command; returns the exit code. Output goes to `out`, problems to `err`. */
export async function runCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  out: (line: string) => void = console.log,
  err: (line: string) => void = console.error,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      plan: { type: 'string' },
      rps: { type: 'string' },
      jobs: { type: 'string' },
      'cpu-seconds': { type: 'string' },
      name: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined) {
    out(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const target = targetFrom(env);
  if (typeof target === 'string') {
    err(target);
    return 2;
  }
  const need = (n: number, what: string): boolean => {
    if (args.length === n) return true;
    err(`${command} takes ${what}\n\n${USAGE}`);
    return false;
  };
  switch (command) {
    case 'create-tenant': {
      if (!need(1, 'one name')) return 2;
      const quota: Record<string, number> = {};
      for (const [flag, field] of [
        ['rps', 'requestsPerSecond'],
        ['jobs', 'concurrentJobs'],
        ['cpu-seconds', 'monthlyCpuSeconds'],
      ] as const) {
        if (values[flag] !== undefined) quota[field] = Number(values[flag]);
      }
      const body = { name: args[0], ...(values.plan && { plan: values.plan }), ...(Object.keys(quota).length > 0 && { quota }) };
      return send(target, 'POST', '/v1/tenants', body, out, err);
    }
    case 'issue-key':
      if (!need(1, 'one tenant id')) return 2;
      return send(
        target,
        'POST',
        `/v1/tenants/${encodeURIComponent(args[0] as string)}/keys`,
        values.name ? { name: values.name } : {},
        out,
        err,
      );
    case 'revoke-key':
      if (!need(1, 'one key id (key_…)')) return 2;
      return send(target, 'DELETE', `/v1/keys/${encodeURIComponent(args[0] as string)}`, undefined, out, err);
    case 'change-plan':
      if (!need(2, 'a tenant id and a plan')) return 2;
      return send(target, 'PATCH', `/v1/tenants/${encodeURIComponent(args[0] as string)}`, { plan: args[1] }, out, err);
    case 'list-tenants':
      return send(target, 'GET', '/v1/tenants', undefined, out, err);
    case 'list-keys':
      if (!need(1, 'one tenant id')) return 2;
      return send(target, 'GET', `/v1/tenants/${encodeURIComponent(args[0] as string)}/keys`, undefined, out, err);
    default:
      err(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

/** Where the management plane is: the environment, else what `npm start` wrote. */
function targetFrom(env: NodeJS.ProcessEnv): Target | string {
  if (env.BALLAST_IDENTITY_URL) {
    if (!env.BALLAST_IDENTITY_ADMIN_TOKEN)
      return 'BALLAST_IDENTITY_URL is set but BALLAST_IDENTITY_ADMIN_TOKEN is not: set the admin token too';
    return { url: env.BALLAST_IDENTITY_URL, adminToken: env.BALLAST_IDENTITY_ADMIN_TOKEN };
  }
  const file = join(env.INIT_CWD ?? process.cwd(), '.ballast', 'identity.json');
  if (!existsSync(file)) {
    return `no management plane to talk to: start one (npm start) or set BALLAST_IDENTITY_URL and BALLAST_IDENTITY_ADMIN_TOKEN (looked for ${file})`;
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Target;
}

async function send(
  target: Target,
  method: string,
  path: string,
  body: unknown,
  out: (l: string) => void,
  err: (l: string) => void,
): Promise<number> {
  let response: Response;
  try {
    response = await fetch(new URL(path, target.url), {
      method,
      headers: { authorization: `Bearer ${target.adminToken}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  } catch (error) {
    err(`cannot reach the management plane at ${target.url}: ${(error as Error).cause ?? error}`);
    return 1;
  }
  const text = await response.text();
  if (!response.ok) {
    err(`${response.status}: ${text}`);
    return 1;
  }
  out(JSON.stringify(JSON.parse(text), null, 2));
  return 0;
}

if (import.meta.main) process.exitCode = await runCli(process.argv.slice(2));
