import { InvalidOptionError } from '@ballast/common';

/**
 * Named address ranges accepted in `trustedProxies` beside addresses and CIDR ranges.
 * `loopback`: 127.0.0.0/8, ::1. `private`: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,
 * fc00::/7. `linklocal`: 169.254.0.0/16, fe80::/10.
 */
export const TRUSTED_PROXY_PRESETS: Readonly<Record<string, readonly string[]>> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
};

/** An address as eight 16-bit groups; IPv4 addresses are held IPv4-mapped (`::ffff:a.b.c.d`). */
type Groups = number[];

interface Range {
  groups: Groups;
  prefix: number;
}

/**
 * Parses an IPv4 or IPv6 address (an IPv6 zone such as `%eth0` is ignored) into eight
 * 16-bit groups, IPv4 as IPv4-mapped IPv6. `undefined` when it is not an address.
 */
export function parseAddress(text: string): Groups | undefined {
  const v4 = parseIPv4(text);
  if (v4) return [0, 0, 0, 0, 0, 0xffff, (v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
  return parseIPv6(text);
}

function parseIPv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const part of parts) {
    // Decimal only, no leading zeros (which some parsers read as octal).
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

function parseIPv6(input: string): Groups | undefined {
  const zone = input.indexOf('%');
  const text = zone === -1 ? input : input.slice(0, zone);
  if (!text.includes(':') || text.length > 45) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const side = (part: string): Groups | undefined => {
    if (part === '') return [];
    const groups: Groups = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIPv4(piece);
        if (!v4) return undefined;
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        groups.push(Number.parseInt(piece, 16));
      } else {
        return undefined;
      }
    }
    return groups;
  };
  const head = side(halves[0]!);
  if (!head) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const tail = side(halves[1]!);
  if (!tail || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** `::ffff:a.b.c.d` → `a.b.c.d`; other addresses unchanged. */
export function unmapIPv4(address: string): string {
  return address.length > 7 && address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

function parseRange(entry: string, option: string): Range[] {
  const preset = TRUSTED_PROXY_PRESETS[entry];
  if (preset) return preset.flatMap((e) => parseRange(e, option));
  const slash = entry.indexOf('/');
  const text = slash === -1 ? entry : entry.slice(0, slash);
  const groups = parseAddress(text);
  const isV4 = parseIPv4(text) !== undefined;
  const bits = isV4 ? 32 : 128;
  const prefixText = slash === -1 ? String(bits) : entry.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
  if (!groups || !(prefix >= 0 && prefix <= bits)) {
    throw new InvalidOptionError(
      option,
      `an IPv4 or IPv6 address, a CIDR range (10.0.0.0/8, fd00::/8) or one of ${Object.keys(TRUSTED_PROXY_PRESETS).join(', ')}`,
      entry,
    );
  }
  return [{ groups, prefix: isV4 ? prefix + 96 : prefix }];
}

function inRange(address: Groups, range: Range): boolean {
  let bits = range.prefix;
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if ((address[i]! & mask) !== (range.groups[i]! & mask)) return false;
  }
  return true;
}

/**
 * Which peers are trusted proxies, from a list of addresses, CIDR ranges and preset
 * names. IPv4 rules match IPv4-mapped IPv6 peers (`::ffff:10.0.0.1`) too.
 */
export class TrustedProxies {
  readonly #ranges: Range[];
  #lastAddress: string | undefined;
  #lastResult = false;

  /**
   * @param entries addresses (`10.0.0.7`, `::1`), CIDR ranges (`10.0.0.0/8`, `fd00::/8`)
   *   or presets (`loopback`, `private`, `linklocal`).
   * @param option the option name used in error messages.
   * @throws {InvalidOptionError} naming the entry that is not an address, range or preset.
   */
  constructor(entries: readonly string[] = [], option = 'trustedProxies') {
    if (!Array.isArray(entries)) throw new InvalidOptionError(option, 'an array of addresses or CIDR ranges', entries);
    this.#ranges = entries.flatMap((entry, i) => {
      if (typeof entry !== 'string') throw new InvalidOptionError(`${option}[${i}]`, 'an address or CIDR range', entry);
      return parseRange(entry.trim(), `${option}[${i}]`);
    });
  }

  /** Whether nothing is trusted. */
  get empty(): boolean {
    return this.#ranges.length === 0;
  }

  /** True when `address` (IPv4, IPv6 or IPv4-mapped IPv6) lies in a trusted range. */
  has(address: string | undefined): boolean {
    if (address === undefined || this.#ranges.length === 0) return false;
    // Keep-alive connections from one proxy repeat the same peer: remember the last answer.
    if (address === this.#lastAddress) return this.#lastResult;
    const groups = parseAddress(address);
    const result = groups !== undefined && this.#ranges.some((range) => inRange(groups, range));
    this.#lastAddress = address;
    this.#lastResult = result;
    return result;
  }
}
