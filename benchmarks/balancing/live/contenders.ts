/**
 * Everything that can stand between the load generator and the backends in the live
 * comparison, each started as its own process on 127.0.0.1: Ballast's proxy on either
 * data path, the Node proxies users know, nginx and HAProxy, and two references: the
 * bare undici pass-through and a node:http server answering by itself.
 */
import { join } from 'node:path';
import type { LiveKind } from '../results.ts';
import type { StrategyEntry } from '../strategies.ts';
import type { BackendConfig } from './backend.ts';
import type { GatewayConfig } from './gateway.ts';
import type { NodePeerConfig } from './node-peers.ts';
import { forkModule } from './processes.ts';
import { type ProxyConfig, startProxy } from './proxies.ts';

const here = import.meta.dirname;

export interface Started {
  port: number;
  pid: number | undefined;
  stop(): Promise<void>;
}

export interface Contender {
  label: string;
  kind: LiveKind;
  strategy: string | null;
  start(upstreams: number[]): Promise<Started>;
}

const addresses = (ports: number[]): string[] => ports.map((p) => `http://127.0.0.1:${p}`);

async function fork(module: string, arg: unknown): Promise<Started> {
  const { running, ready } = await forkModule<{ port: number }>(join(here, module), [JSON.stringify(arg)]);
  return { port: ready.port, pid: running.child.pid, stop: () => running.stop() };
}

/** Ballast's proxy with one strategy: `node` is `nodeProxy` on node:http, `net` is `netProxy` on node:net, `hono` is `balancedProxy` on @hono/node-server. */
export function ballast(entry: StrategyEntry, path: GatewayConfig['path']): Contender {
  return {
    label:
      path === 'node' ? `Ballast ${entry.label}` : path === 'net' ? `Ballast ${entry.label} (netProxy)` : `Ballast ${entry.label} (Hono)`,
    kind: 'ballast',
    strategy: entry.id,
    start: (ports) =>
      fork('gateway.ts', {
        strategy: entry.id,
        path,
        upstreams: ports.map((p, i) => ({ id: `s${i}`, address: `http://127.0.0.1:${p}` })),
      } satisfies GatewayConfig),
  };
}

export function nodePeer(kind: NodePeerConfig['kind']): Contender {
  return {
    label: kind === 'fastify-http-proxy' ? '@fastify/http-proxy round robin' : 'http-proxy round robin',
    kind: 'node-peer',
    strategy: null,
    start: (ports) => fork('node-peers.ts', { kind, upstreams: addresses(ports) } satisfies NodePeerConfig),
  };
}

export function cProxy(config: ProxyConfig): Contender {
  return {
    label: config.name,
    kind: config.kind,
    strategy: null,
    async start(ports) {
      const proxy = await startProxy(config, ports);
      return { port: proxy.port, pid: proxy.running.child.pid, stop: () => proxy.stop() };
    },
  };
}

export const bareUndici: Contender = {
  label: 'reference: bare undici pass-through',
  kind: 'reference',
  strategy: null,
  start: (ports) => fork('bare-proxy.ts', addresses(ports)),
};

/**
 * A reference, not a proxy: a node:http server answering every request itself (the
 * backend of the proxy-cost runs), measured the same way. Whatever a proxy on node:http
 * does costs at least this much per request, before it calls an upstream.
 */
export const nodeHttpServer: Contender = {
  label: 'reference: node:http server answering by itself',
  kind: 'reference',
  strategy: null,
  start: () => fork('backend.ts', { id: 'self', concurrency: 1, meanMs: 0, seed: 1 } satisfies BackendConfig),
};
