/**
 * nginx and HAProxy in front of the same backends, configured equivalently: one worker
 * (so CPU per request compares with a single-threaded Node gateway), HTTP/1.1 keep-alive
 * to the backends, no retries, no health checks, no connection limits, equal weights,
 * 127.0.0.1 only. Configs go to a temporary directory that is removed afterwards.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type Running, startProgram, waitForPort } from './processes.ts';

export interface ProxyConfig {
  /** Label used in the report, e.g. `nginx least_conn`. */
  name: string;
  kind: 'nginx' | 'haproxy';
  /** The balancing directive: nginx `least_conn` / `random two least_conn` / '' (round robin); HAProxy `roundrobin` / `leastconn` / `random(2)`. */
  directive: string;
}

export const proxyConfigs: ProxyConfig[] = [
  { name: 'nginx round robin', kind: 'nginx', directive: '' },
  { name: 'nginx least_conn', kind: 'nginx', directive: 'least_conn' },
  { name: 'nginx random two least_conn', kind: 'nginx', directive: 'random two least_conn' },
  { name: 'HAProxy roundrobin', kind: 'haproxy', directive: 'roundrobin' },
  { name: 'HAProxy leastconn', kind: 'haproxy', directive: 'leastconn' },
  { name: 'HAProxy random(2)', kind: 'haproxy', directive: 'random(2)' },
];

export function nginxConfig(dir: string, port: number, upstreams: number[], directive: string): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  upstream backends {
    ${directive ? `${directive};` : '# round robin (the default)'}
${upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=0;`).join('\n')}
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream off;
      proxy_read_timeout 60s;
    }
  }
}
`;
}

export function haproxyConfig(port: number, upstreams: number[], directive: string): string {
  return `global
  nbthread 1
  maxconn 8192
defaults
  mode http
  option http-keep-alive
  http-reuse always
  retries 0
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  balance ${directive}
${upstreams.map((p, i) => `  server s${i} 127.0.0.1:${p}`).join('\n')}
`;
}

/** Makes sure nginx, HAProxy and wrk are installed (Debian packages), installing them when missing. */
export function ensureProxies(repoRoot: string): void {
  const result = spawnSync(process.execPath, ['scripts/ensure-system-deps.ts', 'nginx', 'haproxy', 'wrk'], {
    cwd: repoRoot,
    stdio: 'inherit',
  });
  if (result.status !== 0) throw new Error('nginx, HAProxy and wrk are required for the live comparison (see the message above)');
}

/** Starts the proxy on a free port in front of `upstreams`; `stop()` kills it and removes its temp dir. */
export async function startProxy(
  config: ProxyConfig,
  upstreams: number[],
): Promise<{ port: number; running: Running; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), `ballast-${config.kind}-`));
  const port = await freePort();
  let running: Running;
  if (config.kind === 'nginx') {
    writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, port, upstreams, config.directive));
    running = startProgram('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')]);
  } else {
    writeFileSync(join(dir, 'haproxy.cfg'), haproxyConfig(port, upstreams, config.directive));
    running = startProgram('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')]);
  }
  try {
    await waitForPort(port, 10_000, running.child);
  } catch (error) {
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${config.name} did not start: ${(error as Error).message}\n${running.stderr()}`);
  }
  return {
    port,
    running,
    async stop() {
      await running.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
