import { InvalidOptionError } from '@ballast/common';
import { parseAddress, TrustedProxies, unmapIPv4 } from './trusted-proxies.ts';

/** Request or response headers as Node keeps them: lower-case names, repeated fields as arrays. */
export type NodeHeaders = Readonly<Record<string, string | string[] | number | undefined>>;

/** Headers ready to send: lower-case names, repeated fields as arrays. */
export type OutgoingHeaders = Record<string, string | string[]>;

/**
 * Headers that describe one connection and are never forwarded by a proxy
 * (RFC 9110 §7.6.1), lower case. Also remove those the `Connection` header names.
 */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

/** Headers through which a client can claim an address, host or scheme. */
export const FORWARDING_HEADERS: readonly string[] = ['forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip'];

const HOP_BY_HOP = new Set(HOP_BY_HOP_HEADERS);
/**
 * Never copied to the upstream request: `host` (the upstream request sets its own) and
 * `expect` (this server has answered `100-continue` itself).
 */
const FROM_TRUSTED_DROP: ReadonlySet<string> = new Set(['host', 'expect']);
const FROM_CLIENT_DROP: ReadonlySet<string> = new Set([...FROM_TRUSTED_DROP, ...FORWARDING_HEADERS]);
/** `Connection` may not nominate the field that frames the body. */
const NEVER_NOMINATED = new Set(['content-length']);

/** Options of {@link forwardingHeaders} and {@link createForwarding}. */
export interface ForwardingOptions {
  /**
   * Peers whose forwarding headers (`Forwarded`, `X-Forwarded-For`, `-Host`, `-Proto`,
   * `X-Real-IP`) are kept and extended: IPv4/IPv6 addresses, CIDR ranges (`10.0.0.0/8`,
   * `fd00::/8`) or the presets `loopback`, `private`, `linklocal`. From any other peer
   * those headers are removed and replaced with what this proxy saw.
   * @default [] (trust no peer)
   */
  trustedProxies?: readonly string[];
  /**
   * This proxy's identifier in the RFC 7239 `by=` parameter: an address or an
   * obfuscated name such as `_gateway`. @default none (no `by=`)
   */
  by?: string;
  /** Write the peer's port into `Forwarded: for=` (`for="192.0.2.1:51234"`). @default false */
  includePort?: boolean;
}

/** The connection a request arrived on. */
export interface ForwardingPeer {
  /** The socket's remote address (`req.socket.remoteAddress`); `undefined` writes `for=unknown`. */
  address: string | undefined;
  /** The socket's remote port, written with `includePort`. */
  port?: number | undefined;
  /** The scheme the request arrived on. @default 'http' */
  protocol?: 'http' | 'https';
  /** The host the request was addressed to when the headers carry no `Host` (a web `Request`'s URL host). @default none */
  host?: string | undefined;
}

/** Forwarding rules compiled once: use on every request. */
export interface Forwarding {
  /** Whether `address` is a trusted proxy. */
  isTrusted(address: string | undefined): boolean;
  /** The upstream request's headers for a request with `headers` from `peer` (see {@link forwardingHeaders}). */
  headers(headers: NodeHeaders | Headers, peer: ForwardingPeer): OutgoingHeaders;
  /**
   * The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
   * address in `X-Forwarded-For` (else `Forwarded: for=`) that is not a trusted proxy.
   */
  clientAddress(headers: NodeHeaders | Headers, peer: ForwardingPeer): string | undefined;
  /**
   * The forwarding fields {@link Forwarding.headers} adds for a peer that is not a trusted
   * proxy (whose own forwarding fields are dropped), as HTTP/1.1 field lines each ending
   * in CRLF: `forwarded`, `x-forwarded-for`, `x-forwarded-host` (when `host` is given),
   * `x-forwarded-proto`. For a data path that copies the other fields itself.
   */
  fields(peer: ForwardingPeer, host: string | undefined): string;
}

/**
 * Compiles forwarding rules once, for use on every request.
 *
 * @throws {InvalidOptionError} naming a `trustedProxies` entry that is not an address, range or preset, or an invalid `by`.
 */
export function createForwarding(options: ForwardingOptions = {}): Forwarding {
  const trusted = new TrustedProxies(options.trustedProxies ?? []);
  const by = options.by === undefined ? undefined : formatBy(options.by);
  const includePort = options.includePort === true;
  const isTrusted = (address: string | undefined): boolean => trusted.has(address);
  // Keep-alive connections repeat the same peer and Host: format each once.
  let lastPeer: string | undefined;
  let lastPort: number | undefined;
  let lastElement = '';
  let lastHost: string | undefined;
  let lastQuotedHost = '';
  const element = (address: string | undefined, port: number | undefined, host: string | undefined, proto: string): string => {
    if (address !== lastPeer || port !== lastPort || address === undefined) {
      lastPeer = address;
      lastPort = port;
      lastElement = `for=${formatNode(address, port)}`;
      if (by !== undefined) lastElement += `;by=${by}`;
    }
    if (host === undefined) return `${lastElement};proto=${proto}`;
    if (host !== lastHost) {
      lastHost = host;
      lastQuotedHost = quoteIfNeeded(host);
    }
    return `${lastElement};host=${lastQuotedHost};proto=${proto}`;
  };
  return {
    isTrusted,
    fields(peer, host) {
      const address = peer.address === undefined ? undefined : unmapIPv4(peer.address);
      const proto = peer.protocol ?? 'http';
      const own = element(address, includePort ? peer.port : undefined, host || undefined, proto);
      let lines = `forwarded: ${own}\r\n`;
      if (address !== undefined) lines += `x-forwarded-for: ${address}\r\n`;
      if (host) lines += `x-forwarded-host: ${host}\r\n`;
      return `${lines}x-forwarded-proto: ${proto}\r\n`;
    },
    headers(input, peer) {
      const headers = input instanceof Headers ? fromWebHeaders(input) : input;
      const fromProxy = isTrusted(peer.address);
      const out = endToEndHeaders(headers, fromProxy ? FROM_TRUSTED_DROP : FROM_CLIENT_DROP);
      const address = peer.address === undefined ? undefined : unmapIPv4(peer.address);
      const proto = peer.protocol ?? 'http';
      const host = single(headers.host) ?? single(headers[':authority']) ?? (peer.host || undefined);
      const own = element(address, includePort ? peer.port : undefined, host, proto);
      const priorFor = fromProxy ? joined(out['x-forwarded-for']) : undefined;
      const priorForwarded = fromProxy ? joined(out.forwarded) : undefined;
      out.forwarded =
        priorForwarded !== undefined
          ? `${priorForwarded}, ${own}`
          : priorFor !== undefined
            ? `${fromXForwarded(priorFor, joined(out['x-forwarded-host']), joined(out['x-forwarded-proto']))}, ${own}`
            : own;
      const chain = priorFor ?? (priorForwarded === undefined ? undefined : forwardedFor(priorForwarded).join(', '));
      if (address !== undefined) out['x-forwarded-for'] = chain ? `${chain}, ${address}` : address;
      else if (chain) out['x-forwarded-for'] = chain;
      if (out['x-forwarded-host'] === undefined && host !== undefined) out['x-forwarded-host'] = host;
      if (out['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = proto;
      return out;
    },
    clientAddress(input, peer) {
      const address = peer.address === undefined ? undefined : unmapIPv4(peer.address);
      if (!isTrusted(address)) return address;
      const headers = input instanceof Headers ? fromWebHeaders(input) : input;
      const xff = joined(headers['x-forwarded-for']);
      const forwarded = joined(headers.forwarded);
      const chain = xff !== undefined ? xff.split(',').map((s) => s.trim()) : forwarded !== undefined ? forwardedFor(forwarded) : [];
      let nearest = address;
      for (let i = chain.length - 1; i >= 0; i--) {
        const hop = unmapIPv4(chain[i]!);
        if (hop === '') continue;
        nearest = hop;
        if (!isTrusted(hop)) return hop;
      }
      return nearest;
    },
  };
}

/**
 * The headers to send upstream for a request received from `peer`:
 *
 * - hop-by-hop headers ({@link HOP_BY_HOP_HEADERS}) and every header the `Connection`
 *   header nominates are dropped (except `content-length`, which frames the body);
 *   `host` is dropped too (the upstream request sets its own; the original is in
 *   `Forwarded: host=` and `X-Forwarded-Host`), and `expect` (the server in front of
 *   this proxy answers `100-continue`);
 * - unless the peer is a trusted proxy, the client's `Forwarded`, `X-Forwarded-For`,
 *   `X-Forwarded-Host`, `X-Forwarded-Proto` and `X-Real-IP` are dropped;
 * - RFC 7239 `Forwarded` gets an element `for=<peer>;host=<Host>;proto=<scheme>`
 *   (IPv6 as `for="[2001:db8::1]"`, quoted with a port), appended to a trusted proxy's
 *   list (or to one converted from its `X-Forwarded-For`), and `X-Forwarded-For` gets the
 *   peer's address appended the same way; `X-Forwarded-Host` and `X-Forwarded-Proto`
 *   are set from this request unless a trusted proxy set them.
 *
 * Compiles `options` on every call: on a hot path, compile once with
 * {@link createForwarding} and call its `headers()`.
 *
 * @example
 * ```ts
 * const headers = forwardingHeaders(req.headers, { address: req.socket.remoteAddress, port: req.socket.remotePort }, { trustedProxies: ['10.0.0.0/8'] });
 * ```
 */
export function forwardingHeaders(headers: NodeHeaders | Headers, peer: ForwardingPeer, options: ForwardingOptions = {}): OutgoingHeaders {
  return createForwarding(options).headers(headers, peer);
}

/**
 * A copy of `headers` without hop-by-hop headers, the headers `Connection` nominates
 * (except `content-length`) and any name in `drop`. For responses as well as requests.
 */
export function endToEndHeaders(headers: NodeHeaders, drop?: ReadonlySet<string>): OutgoingHeaders {
  const out: OutgoingHeaders = {};
  const nominated = nominatedBy(headers);
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (endToEnd(name, value, drop, nominated)) out[name] = typeof value === 'number' ? String(value) : value;
  }
  return out;
}

/**
 * {@link endToEndHeaders} as a flat `[name, value, name, value, …]` list, the form
 * `response.writeHead()` takes without building another object.
 */
export function endToEndHeaderList(headers: NodeHeaders, drop?: ReadonlySet<string>): Array<string | string[]> {
  const out: Array<string | string[]> = [];
  const nominated = nominatedBy(headers);
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (endToEnd(name, value, drop, nominated)) out.push(name, typeof value === 'number' ? String(value) : value!);
  }
  return out;
}

function nominatedBy(headers: NodeHeaders): ReadonlySet<string> | undefined {
  const connection = headers.connection;
  return connection === undefined ? undefined : connectionOptions(connection);
}

function endToEnd(
  name: string,
  value: NodeHeaders[string],
  drop: ReadonlySet<string> | undefined,
  nominated: ReadonlySet<string> | undefined,
): value is string | string[] | number {
  // `__proto__` would set the copy's prototype rather than a header; HTTP/2 pseudo-headers start with ':'.
  if (value === undefined || HOP_BY_HOP.has(name) || name.charCodeAt(0) === 58 || name === '__proto__') return false;
  return !(drop?.has(name) || nominated?.has(name));
}

/** Removes hop-by-hop headers from web `Headers`, including those the `Connection` header names (except `content-length`). */
export function stripHopByHop(headers: Headers): Headers {
  const named = headers.get('connection');
  if (named) for (const name of connectionOptions(named)) headers.delete(name);
  for (const name of HOP_BY_HOP_HEADERS) headers.delete(name);
  return headers;
}

/** The `Connection` values nearly every message carries, answered without parsing. */
const USUAL_CONNECTION: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['keep-alive', new Set(['keep-alive'])],
  ['close', new Set(['close'])],
]);

function connectionOptions(value: string | string[] | number): ReadonlySet<string> {
  const usual = typeof value === 'string' ? USUAL_CONNECTION.get(value) : undefined;
  if (usual !== undefined) return usual;
  const set = new Set<string>();
  for (const part of Array.isArray(value) ? value : [String(value)]) {
    for (const token of part.split(',')) {
      const name = token.trim().toLowerCase();
      if (name !== '' && !NEVER_NOMINATED.has(name)) set.add(name);
    }
  }
  return set;
}

function fromWebHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    out[name] = value;
  });
  return out;
}

function single(value: string | string[] | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[0] : String(value);
  return text === undefined || text === '' ? undefined : text;
}

function joined(value: string | string[] | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value.join(', ') : String(value);
  return text.trim() === '' ? undefined : text;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A `Forwarded` parameter value: a token as is, anything else as a quoted-string. */
export function quoteIfNeeded(value: string): string {
  return TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** An RFC 7239 node: `192.0.2.1`, `"[2001:db8::1]"`, `"192.0.2.1:4711"`, `unknown`. */
function formatNode(address: string | undefined, port: number | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const ip = parseAddress(address) !== undefined;
  const host = ip && address.includes(':') ? `[${address}]` : address;
  return quoteIfNeeded(port === undefined ? host : `${host}:${port}`);
}

function formatBy(by: unknown): string {
  if (typeof by !== 'string' || by === '' || /[\s"\\,;]/.test(by)) {
    throw new InvalidOptionError('by', 'an address or an obfuscated identifier such as "_gateway"', by);
  }
  return formatNode(by, undefined);
}

/** `Forwarded` elements from a trusted proxy's `X-Forwarded-*` (RFC 7239 §7.4). */
function fromXForwarded(forwardedFor: string, host: string | undefined, proto: string | undefined): string {
  return forwardedFor
    .split(',')
    .map((hop, i) => {
      const address = unmapIPv4(hop.trim());
      let element = `for=${parseAddress(address) === undefined ? 'unknown' : formatNode(address, undefined)}`;
      if (i === 0 && host !== undefined) element += `;host=${quoteIfNeeded(host.split(',')[0]!.trim())}`;
      if (i === 0 && proto !== undefined) element += `;proto=${quoteIfNeeded(proto.split(',')[0]!.trim())}`;
      return element;
    })
    .join(', ');
}

/** The `for=` values of a `Forwarded` header, in order, without quotes, brackets or ports. */
export function forwardedFor(value: string): string[] {
  const out: string[] = [];
  for (const element of splitOutsideQuotes(value, ',')) {
    for (const pair of splitOutsideQuotes(element, ';')) {
      const eq = pair.indexOf('=');
      if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      out.push(nodeAddress(unquote(pair.slice(eq + 1).trim())));
    }
  }
  return out;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === separator && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function unquote(value: string): string {
  if (value.length < 2 || !value.startsWith('"') || !value.endsWith('"')) return value;
  return value.slice(1, -1).replace(/\\(.)/g, '$1');
}

/** `[2001:db8::1]:4711` → `2001:db8::1`; `192.0.2.1:4711` → `192.0.2.1`. */
function nodeAddress(node: string): string {
  if (node.startsWith('[')) {
    const end = node.indexOf(']');
    return end === -1 ? node : node.slice(1, end);
  }
  const colon = node.indexOf(':');
  return colon !== -1 && node.indexOf(':', colon + 1) === -1 ? node.slice(0, colon) : node;
}
