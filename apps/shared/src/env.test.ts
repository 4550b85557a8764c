import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, intVar, readEnv } from './env.ts';
import { API_ENV, COMMON_ENV, GATEWAY_ENV, knownVariables, loadEnv, QUEUE_ENV } from './variables.ts';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

describe('loadEnv', () => {
  it('parses set values and falls back to the defaults', () => {
    const env = loadEnv(API_ENV, { BALLAST_API_PORT: '9001', BALLAST_API_MAX_INFLIGHT: '12' });
    expect(env.BALLAST_API_PORT).toBe(9001);
    expect(env.BALLAST_API_MAX_INFLIGHT).toBe(12);
    expect(env.BALLAST_API_HOST).toBe('127.0.0.1');
    expect(env.BALLAST_API_DEFAULT_DEADLINE_MS).toBeUndefined();
  });

  it.each([
    ['BALLAST_API_PORT', 'abc', 'a port from 0 (a free one) to 65535'],
    ['BALLAST_API_PORT', '70000', 'a port from 0 (a free one) to 65535'],
    ['BALLAST_API_MAX_INFLIGHT', '0', 'an integer >= 1'],
    ['BALLAST_API_MAX_INFLIGHT', '1e3', 'an integer >= 1'],
    ['BALLAST_API_DRAIN_MS', '-5', 'an integer from 0 to 600000'],
  ])('refuses %s=%s, naming the variable and what it accepts', (name, value, accepted) => {
    expect(problems(() => loadEnv(API_ENV, { [name]: value }))).toEqual([`${name} must be ${accepted}, got ${JSON.stringify(value)}`]);
  });

  it('refuses a bad log level', () => {
    expect(problems(() => loadEnv(COMMON_ENV, { BALLAST_LOG_LEVEL: 'verbose' }))).toEqual([
      'BALLAST_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent, got "verbose"',
    ]);
  });

  it('lists every problem at once, including a missing required variable', () => {
    expect(problems(() => loadEnv(GATEWAY_ENV, { BALLAST_GATEWAY_PORT: 'x', BALLAST_GATEWAY_STRATEGY: 'fastest' }))).toEqual([
      'BALLAST_GATEWAY_UPSTREAMS is required: a comma-separated list of http:// URLs (origin only)',
      'BALLAST_GATEWAY_STRATEGY must be one of p2c, round-robin, least-connections, peak-ewma, random, got "fastest"',
      'BALLAST_GATEWAY_PORT must be a port from 0 (a free one) to 65535, got "x"',
    ]);
  });

  it('parses lists item by item and refuses a bad item', () => {
    const ok = loadEnv(GATEWAY_ENV, { BALLAST_GATEWAY_UPSTREAMS: 'http://127.0.0.1:8081/, http://10.0.0.2:80' });
    expect(ok.BALLAST_GATEWAY_UPSTREAMS).toEqual(['http://127.0.0.1:8081', 'http://10.0.0.2']);
    expect(problems(() => loadEnv(GATEWAY_ENV, { BALLAST_GATEWAY_UPSTREAMS: 'http://a:1,,ftp://b' }))[0]).toMatch(
      /^BALLAST_GATEWAY_UPSTREAMS must be a comma-separated list/,
    );
    expect(loadEnv(QUEUE_ENV, { BALLAST_REDIS_SENTINELS: 'h1:26379,h2:26380' }).BALLAST_REDIS_SENTINELS).toEqual([
      { host: 'h1', port: 26379 },
      { host: 'h2', port: 26380 },
    ]);
  });

  it('stops on a likely typo of any service’s variable, naming the one meant', () => {
    expect(problems(() => loadEnv(API_ENV, { BALLAST_API_PROT: '8081' }))).toEqual([
      'BALLAST_API_PROT is not a Ballast variable; did you mean BALLAST_API_PORT?',
    ]);
    // Another service's variable, spelt right, is fine in a shared environment.
    expect(() => loadEnv(API_ENV, { BALLAST_GATEWAY_UPSTREAMS: 'http://x:1' })).not.toThrow();
    expect(problems(() => loadEnv(API_ENV, { BALLAST_GATEWAY_UPSTREAM: 'http://x:1' }))).toEqual([
      'BALLAST_GATEWAY_UPSTREAM is not a Ballast variable; did you mean BALLAST_GATEWAY_UPSTREAMS?',
    ]);
  });

  it('reports other unknown BALLAST_ variables without stopping', () => {
    const warnings: string[] = [];
    loadEnv(API_ENV, { BALLAST_SOMETHING_ELSE_ENTIRELY: '1', OTHER: 'x' }, (line) => warnings.push(line));
    expect(warnings).toEqual(['BALLAST_SOMETHING_ELSE_ENTIRELY is not a variable any Ballast service reads; it is ignored']);
  });

  it('is the table of apps/README.md: every variable there, and nothing else', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### Configuration (environment)'), readme.indexOf('## The HTTP API'));
    const documented = new Set(section.match(/BALLAST_[A-Z0-9_]+/g));
    expect([...documented].sort()).toEqual(knownVariables().sort());
  });

  it('names every variable once in the catalogue', () => {
    const names = knownVariables();
    expect(new Set(names).size).toBe(names.length);
    expect(names.every((n) => /^BALLAST_[A-Z0-9_]+$/.test(n))).toBe(true);
  });
});

describe('intVar', () => {
  it('accepts the bounds and nothing past them', () => {
    const v = intVar('x', { min: 1, max: 3 });
    expect([v.parse('1'), v.parse('3'), v.parse('0'), v.parse('4'), v.parse('2.0'), v.parse(' 2')]).toEqual([
      1,
      3,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(() => readEnv({ X: v }, { X: '9' }, ['X'])).toThrow('X must be an integer from 1 to 3, got "9"');
  });
});
