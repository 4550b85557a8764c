import { TimeoutError } from '@ballast/common';
import { describe, expect, it } from 'vitest';
import { balancedFetch, dynamic, isUpstreamError, LoadBalancer, NoEndpointAvailableError, roundRobin, UpstreamError } from './index.ts';
import { echo, hang, refusingUrl, useCleanup } from './testing/upstreams.ts';

const { defer, upstream } = useCleanup();

function balancer(addresses: string[]): LoadBalancer {
  const lb = new LoadBalancer({ endpoints: addresses.map((address, i) => ({ id: `u${i}`, address })), strategy: roundRobin() });
  defer(() => lb.close());
  return lb;
}

describe('balancedFetch', () => {
  it('sends each call to the next endpoint and accounts for it', async () => {
    const a = await upstream(echo('a', 0.5));
    const b = await upstream(echo('b'));
    const lb = balancer([a.url, `${b.url}/`]);
    const api = balancedFetch(lb);
    const first = await api('/v1/items?x=1', { method: 'POST', body: 'hi', headers: { 'x-tenant': 't1' } });
    expect(await first.json()).toMatchObject({ id: 'a', method: 'POST', url: '/v1/items?x=1', body: 'hi', headers: { 'x-tenant': 't1' } });
    const second = await api('v1/items');
    expect(await second.json()).toMatchObject({ id: 'b', url: '/v1/items' });
    expect(lb.stats().endpoints.map((e) => [e.successes, e.inFlight, e.load])).toEqual([
      [1, 0, 0.5],
      [1, 0, null],
    ]);
  });

  it('feeds the x-ballast-load header to dynamic weights', async () => {
    const busy = await upstream(echo('busy', 0.9));
    const idle = await upstream(echo('idle', 0));
    const strategy = dynamic({ intervalMs: 1, latencySensitivity: 0 });
    const lb = new LoadBalancer({
      endpoints: [
        { id: 'busy', address: busy.url },
        { id: 'idle', address: idle.url },
      ],
      strategy,
    });
    defer(() => lb.close());
    const api = balancedFetch(lb);
    for (let i = 0; i < 20 && lb.stats().endpoints.some((e) => e.load === null); i++) await (await api('/')).arrayBuffer();
    expect(lb.stats().endpoints.map((e) => e.load)).toEqual([0.9, 0]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await (await api('/')).arrayBuffer();
    expect(strategy.weights().get('busy')).toBeCloseTo(0.1, 10);
    expect(strategy.weights().get('idle')).toBe(1);
  });

  it.each([
    ['0.75', 0.75],
    [' 1 ', 1],
    ['', null],
    ['busy', null],
  ])('reads the load header %j as %j', async (header, load) => {
    const u = await upstream((_req, res) => {
      res.writeHead(200, { 'x-ballast-load': header }).end();
    });
    const lb = balancer([u.url]);
    await (await balancedFetch(lb)('/')).arrayBuffer();
    expect(lb.stats().endpoints[0]!.load).toBe(load);
  });

  it('holds the pick until the body is consumed or cancelled', async () => {
    const u = await upstream(echo('a'));
    const lb = balancer([u.url]);
    const api = balancedFetch(lb);
    const res = await api('/');
    expect(lb.stats().inFlight).toBe(1);
    await res.body?.cancel();
    expect(lb.stats().endpoints[0]).toMatchObject({ inFlight: 0, cancelled: 1 });
  });

  it('rejects with UpstreamError when the endpoint refuses the connection', async () => {
    const lb = balancer([await refusingUrl()]);
    const error = await balancedFetch(lb)('/').catch((e: unknown) => e);
    expect(isUpstreamError(error)).toBe(true);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ reason: 'unreachable', endpoint: { id: 'u0' } });
    expect(lb.stats().endpoints[0]!.failures).toBe(1);
  });

  it('rejects with a timeout UpstreamError when the endpoint hangs, and closes the request', async () => {
    const u = await upstream(hang());
    const lb = balancer([u.url]);
    const error = await balancedFetch(lb, { timeoutMs: 100 })('/').catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: 'timeout', code: 'ERR_BALLAST_UPSTREAM' });
    expect((error as Error).cause).toBeInstanceOf(TimeoutError);
    await expect.poll(() => u.aborted.length).toBe(1);
  });

  it('aborts the upstream request with the caller’s signal, without blaming the endpoint', async () => {
    const u = await upstream(hang());
    const lb = balancer([u.url]);
    const controller = new AbortController();
    const pending = balancedFetch(lb)('/', { signal: controller.signal }).catch((e: unknown) => e);
    await expect.poll(() => u.requests.length).toBe(1);
    controller.abort(new Error('user left'));
    expect(await pending).toMatchObject({ message: 'user left' });
    await expect.poll(() => u.aborted.length).toBe(1);
    expect(lb.stats().endpoints[0]).toMatchObject({ cancelled: 1, failures: 0, inFlight: 0 });
  });

  it('rejects at once, picking nothing, when the caller’s signal has already aborted', async () => {
    const u = await upstream(echo('a'));
    const lb = balancer([u.url]);
    const reason = new Error('gave up');
    await expect(balancedFetch(lb)('/', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(lb.stats()).toMatchObject({ picks: 0, inFlight: 0 });
    expect(u.requests).toHaveLength(0);
  });

  it('counts 5xx as failures but returns the response', async () => {
    const u = await upstream((_req, res) => {
      res.writeHead(503).end();
    });
    const lb = balancer([u.url]);
    const res = await balancedFetch(lb)('/');
    expect(res.status).toBe(503);
    await res.arrayBuffer();
    expect(lb.stats().endpoints[0]!.failures).toBe(1);
  });

  it('releases the pick when isFailure throws', async () => {
    const u = await upstream(echo('a'));
    const lb = balancer([u.url]);
    const api = balancedFetch(lb, {
      isFailure: () => {
        throw new Error('bad hook');
      },
    });
    await expect(api('/')).rejects.toThrow('bad hook');
    expect(lb.stats().inFlight).toBe(0);
  });

  it('rejects with NoEndpointAvailableError when there is no endpoint', async () => {
    await expect(balancedFetch(balancer([]))('/')).rejects.toBeInstanceOf(NoEndpointAvailableError);
  });

  it('validates its options', () => {
    expect(() => balancedFetch(balancer([]), { timeoutMs: -1 })).toThrow(/timeoutMs must be/);
  });
});
