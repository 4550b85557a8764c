import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type BalancerControl, connectBalancer } from './balancer.ts';
import { FixedTimeoutDetector } from './fixed-timeout.ts';
import { HeartbeatMonitor } from './monitor.ts';

/** A minimal balancer: the set of endpoints in rotation, and the calls it received. */
class FakeBalancer implements BalancerControl {
  readonly up = new Set<string>(['a', 'b']);
  readonly calls: string[] = [];
  markDown(id: string, reason?: string): void {
    this.up.delete(id);
    this.calls.push(`down ${id} (${reason})`);
  }
  markUp(id: string): void {
    this.up.add(id);
    this.calls.push(`up ${id}`);
  }
}

describe('connectBalancer', () => {
  let monitor: HeartbeatMonitor;
  beforeEach(() => {
    vi.useFakeTimers();
    monitor = new HeartbeatMonitor({ detector: () => new FixedTimeoutDetector({ timeoutMs: 1000 }), deadAfterMs: 2000 });
    monitor.add('a');
    monitor.add('b');
  });
  afterEach(() => {
    monitor.close();
    vi.useRealTimers();
  });

  it('takes suspected endpoints out of rotation and puts them back on recovery', async () => {
    const balancer = new FakeBalancer();
    const connection = connectBalancer(monitor, balancer);
    await vi.advanceTimersByTimeAsync(600);
    monitor.heartbeat('b');
    await vi.advanceTimersByTimeAsync(500);
    expect([...balancer.up]).toEqual(['b']);
    expect(balancer.calls).toEqual(['down a (failure detector: suspect, silent for 1000 ms)']);
    await vi.advanceTimersByTimeAsync(3000); // a dead, b suspect then dead: no second markDown for a
    monitor.heartbeat('a');
    expect([...balancer.up]).toEqual(['a']);
    expect(balancer.calls).toEqual([
      'down a (failure detector: suspect, silent for 1000 ms)',
      'down b (failure detector: suspect, silent for 1000 ms)',
      'up a',
    ]);
    connection.close();
  });

  it('with downOn: dead, waits until an endpoint is declared dead', async () => {
    const balancer = new FakeBalancer();
    connectBalancer(monitor, balancer, { downOn: 'dead' });
    await vi.advanceTimersByTimeAsync(1500);
    monitor.heartbeat('b'); // b recovers from suspect: it was never marked down, so no markUp
    expect(balancer.calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1500);
    expect(balancer.calls).toEqual(['down a (failure detector: dead, silent for 3000 ms)']);
    monitor.heartbeat('a');
    expect(balancer.calls.at(-1)).toBe('up a');
  });

  it('marks down at once the endpoints already down when connecting', async () => {
    await vi.advanceTimersByTimeAsync(1500);
    const balancer = new FakeBalancer();
    connectBalancer(monitor, balancer);
    expect(balancer.calls).toEqual(['down a (failure detector: suspect)', 'down b (failure detector: suspect)']);
  });

  it('stops steering after close()', async () => {
    const balancer = new FakeBalancer();
    using connection = connectBalancer(monitor, balancer);
    connection.close();
    connection.close();
    await vi.advanceTimersByTimeAsync(1500);
    expect(balancer.calls).toEqual([]);
  });

  it('rejects an unknown downOn', () => {
    expect(() => connectBalancer(monitor, new FakeBalancer(), { downOn: 'gone' as 'dead' })).toThrow(
      expect.objectContaining({ code: 'ERR_BALLAST_INVALID_OPTION' }),
    );
  });
});
