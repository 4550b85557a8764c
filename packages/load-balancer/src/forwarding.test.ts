import { describe, expect, it } from 'vitest';
import { createForwarding, endToEndHeaders, forwardedFor, forwardingHeaders, stripHopByHop } from './forwarding.ts';
import { TrustedProxies } from './trusted-proxies.ts';

const client = { address: '198.51.100.7', port: 51234 };

describe('forwardingHeaders', () => {
  it('replaces every forwarding header a client forged, whatever its case or repetition', () => {
    const out = forwardingHeaders(
      {
        host: 'images.example.com',
        forwarded: 'for=127.0.0.1;host=admin.internal;proto=https',
        'x-forwarded-for': ['10.0.0.1', '127.0.0.1'],
        'x-forwarded-host': 'admin.internal',
        'x-forwarded-proto': 'https',
        'x-real-ip': '127.0.0.1',
        accept: 'image/webp',
      },
      client,
      { trustedProxies: ['10.0.0.0/8'] },
    );
    expect(out).toEqual({
      accept: 'image/webp',
      forwarded: 'for=198.51.100.7;host=images.example.com;proto=http',
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-host': 'images.example.com',
      'x-forwarded-proto': 'http',
    });
  });

  it('reads web Headers the same way', () => {
    const headers = new Headers({ host: 'a.example', 'x-forwarded-for': '1.2.3.4', 'x-real-ip': '1.2.3.4', 'x-id': '7' });
    expect(forwardingHeaders(headers, { address: '203.0.113.1', protocol: 'https' })).toEqual({
      'x-id': '7',
      forwarded: 'for=203.0.113.1;host=a.example;proto=https',
      'x-forwarded-for': '203.0.113.1',
      'x-forwarded-host': 'a.example',
      'x-forwarded-proto': 'https',
    });
  });

  it('keeps and extends the headers of a trusted proxy', () => {
    const out = forwardingHeaders(
      {
        host: 'api.internal:8080',
        forwarded: 'for=192.0.2.60;proto=https;host=images.example.com',
        'x-forwarded-for': '192.0.2.60',
        'x-forwarded-host': 'images.example.com',
        'x-forwarded-proto': 'https',
        'x-real-ip': '192.0.2.60',
      },
      { address: '10.0.0.5', port: 40000 },
      { trustedProxies: ['10.0.0.0/8'] },
    );
    expect(out).toEqual({
      forwarded: 'for=192.0.2.60;proto=https;host=images.example.com, for=10.0.0.5;host="api.internal:8080";proto=http',
      'x-forwarded-for': '192.0.2.60, 10.0.0.5',
      'x-forwarded-host': 'images.example.com',
      'x-forwarded-proto': 'https',
      'x-real-ip': '192.0.2.60',
    });
  });

  it('turns a trusted proxy’s X-Forwarded-For into Forwarded, and its Forwarded into X-Forwarded-For', () => {
    const trusted = createForwarding({ trustedProxies: ['loopback'] });
    const peer = { address: '127.0.0.1' };
    expect(trusted.headers({ host: 'h', 'x-forwarded-for': '2001:db8::1, 192.0.2.1', 'x-forwarded-proto': 'https' }, peer)).toMatchObject({
      forwarded: 'for="[2001:db8::1]";proto=https, for=192.0.2.1, for=127.0.0.1;host=h;proto=http',
      'x-forwarded-for': '2001:db8::1, 192.0.2.1, 127.0.0.1',
    });
    expect(trusted.headers({ forwarded: 'for="[2001:db8::1]:4711", for=192.0.2.1;proto=https' }, peer)).toMatchObject({
      forwarded: 'for="[2001:db8::1]:4711", for=192.0.2.1;proto=https, for=127.0.0.1;proto=http',
      'x-forwarded-for': '2001:db8::1, 192.0.2.1, 127.0.0.1',
    });
  });

  it.each([
    ['192.0.2.43', undefined, 'for=192.0.2.43'],
    ['192.0.2.43', 47011, 'for="192.0.2.43:47011"'],
    ['2001:db8:cafe::17', undefined, 'for="[2001:db8:cafe::17]"'],
    ['2001:db8:cafe::17', 4711, 'for="[2001:db8:cafe::17]:4711"'],
    ['::ffff:192.0.2.43', undefined, 'for=192.0.2.43'],
    [undefined, 1, 'for=unknown'],
  ])('writes the node %s (port %s) as %s (RFC 7239 §6)', (address, port, expected) => {
    const out = forwardingHeaders({}, { address, port }, { includePort: true });
    expect(out.forwarded).toBe(`${expected};proto=http`);
    if (address === undefined) expect(out['x-forwarded-for']).toBeUndefined();
    else expect(out['x-forwarded-for']).toBe(address.replace('::ffff:', ''));
  });

  it('quotes a hostile Host so it cannot add parameters or elements', () => {
    const out = forwardingHeaders({ host: 'evil";for=127.0.0.1, for=10.0.0.1;x="\\' }, client);
    expect(out.forwarded).toBe('for=198.51.100.7;host="evil\\";for=127.0.0.1, for=10.0.0.1;x=\\"\\\\";proto=http');
    expect(forwardedFor(out.forwarded as string)).toEqual(['198.51.100.7']);
  });

  it('adds by= when configured, and validates it', () => {
    expect(forwardingHeaders({}, client, { by: '_gateway' }).forwarded).toBe('for=198.51.100.7;by=_gateway;proto=http');
    expect(forwardingHeaders({}, client, { by: '2001:db8::9' }).forwarded).toBe('for=198.51.100.7;by="[2001:db8::9]";proto=http');
    expect(() => forwardingHeaders({}, client, { by: 'a;b' })).toThrow(/^by must be an address or an obfuscated identifier/);
  });

  it('drops hop-by-hop headers, those Connection nominates, and host, but never content-length', () => {
    const out = forwardingHeaders(
      {
        host: 'h',
        connection: 'keep-alive, X-Secret, Content-Length, x-forwarded-for',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        'proxy-authorization': 'Basic c2VjcmV0',
        te: 'trailers',
        trailer: 'x-sum',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'x-secret': 's',
        'content-length': '5',
        ':authority': 'h',
        expect: '100-continue',
      },
      client,
    );
    expect(Object.keys(out).sort()).toEqual(['content-length', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);
    // A client naming x-forwarded-for in Connection cannot remove the address the proxy adds.
    expect(out['x-forwarded-for']).toBe('198.51.100.7');
  });
});

describe('clientAddress', () => {
  const forwarding = createForwarding({ trustedProxies: ['10.0.0.0/8', '::1'] });

  it('is the peer when the peer is not trusted, whatever the headers say', () => {
    expect(forwarding.clientAddress({ 'x-forwarded-for': '1.1.1.1' }, { address: '203.0.113.9' })).toBe('203.0.113.9');
    expect(forwarding.clientAddress({}, { address: '::ffff:203.0.113.9' })).toBe('203.0.113.9');
  });

  it('walks a trusted chain from the right and stops at the first untrusted hop', () => {
    const headers = { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.0.0.2' };
    expect(forwarding.clientAddress(headers, { address: '10.0.0.1' })).toBe('203.0.113.9');
    expect(forwarding.clientAddress({ forwarded: 'for=6.6.6.6, for="[2001:db8::5]:80"' }, { address: '::1' })).toBe('2001:db8::5');
    expect(forwarding.clientAddress({ 'x-forwarded-for': '10.0.0.3' }, { address: '10.0.0.1' })).toBe('10.0.0.3');
    expect(forwarding.clientAddress({}, { address: '10.0.0.1' })).toBe('10.0.0.1');
  });
});

describe('TrustedProxies', () => {
  it('matches addresses, CIDR ranges and presets, IPv4-mapped peers included', () => {
    const t = new TrustedProxies(['192.0.2.7', '10.0.0.0/8', 'fd00::/8', 'loopback', '2001:db8::1', '172.16.0.0/12']);
    for (const yes of [
      '192.0.2.7',
      '10.255.1.2',
      '::ffff:10.1.2.3',
      'fd12::1',
      '127.0.0.1',
      '::1',
      '2001:db8:0:0:0:0:0:1',
      '172.31.255.255',
    ])
      expect(t.has(yes), yes).toBe(true);
    for (const no of ['192.0.2.8', '11.0.0.1', 'fe00::1', '2001:db8::2', '172.32.0.1', 'not-an-ip', '', undefined])
      expect(t.has(no), String(no)).toBe(false);
    expect(new TrustedProxies([]).has('127.0.0.1')).toBe(false);
    expect(new TrustedProxies(['0.0.0.0/0']).has('8.8.8.8')).toBe(true);
  });

  it('names the entry that is wrong', () => {
    expect(() => new TrustedProxies(['10.0.0.0/8', '10.0.0.0/33'])).toThrow(/^trustedProxies\[1\] must be an IPv4 or IPv6 address/);
    expect(() => new TrustedProxies(['localhost'])).toThrow(/^trustedProxies\[0\] must be/);
    expect(() => new TrustedProxies(['010.0.0.1'])).toThrow(/^trustedProxies\[0\] must be/);
    expect(() => new TrustedProxies(['1::2::3'])).toThrow(/^trustedProxies\[0\] must be/);
    expect(() => new TrustedProxies('10.0.0.0/8' as never)).toThrow(/^trustedProxies must be an array/);
  });
});

describe('Forwarding.fields', () => {
  it('writes, as field lines, the forwarding headers headers() adds for a peer that is not trusted', () => {
    for (const options of [{}, { by: '_edge', includePort: true }, { trustedProxies: ['10.0.0.0/8'] }]) {
      const forwarding = createForwarding(options);
      for (const peer of [
        { address: '192.0.2.7', port: 4000 },
        { address: '::ffff:192.0.2.8', port: 4001 },
        { address: '2001:db8::1', port: 4002 },
        { address: undefined },
      ]) {
        const added = forwarding.headers({ host: 'api.example:8080', forwarded: 'for=6.6.6.6', 'x-forwarded-for': '6.6.6.6' }, peer);
        const lines = Object.entries(added)
          .map(([name, value]) => `${name}: ${value}\r\n`)
          .join('');
        expect(forwarding.fields(peer, 'api.example:8080')).toBe(lines);
      }
    }
  });
});

describe('endToEndHeaders and stripHopByHop', () => {
  it('cannot be made to change the copy’s prototype by a header named __proto__', () => {
    const hostile = JSON.parse('{"__proto__": ["polluted"], "x-ok": "1"}') as Record<string, string[] | string>;
    const out = endToEndHeaders(hostile);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['x-ok']);
  });

  it('drop hop-by-hop and nominated headers of a response', () => {
    expect(
      endToEndHeaders({ connection: 'x-hop', 'x-hop': '1', 'keep-alive': 'timeout=5', 'set-cookie': ['a=1', 'b=2'], 'content-length': 3 }),
    ).toEqual({
      'set-cookie': ['a=1', 'b=2'],
      'content-length': '3',
    });
    const web = stripHopByHop(new Headers({ connection: 'X-Hop', 'x-hop': '1', 'proxy-connection': 'x', 'x-kept': 'k' }));
    expect([...web.keys()]).toEqual(['x-kept']);
  });
});
