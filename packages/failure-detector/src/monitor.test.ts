import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isFailureDetectorError } from './errors.ts';
import { FixedTimeoutDetector } from './fixed-timeout.ts';
import { HeartbeatMonitor, type HeartbeatMonitorEvents } from './monitor.ts';

type Recorded = { [K in keyof HeartbeatMonitorEvents]: [K, HeartbeatMonitorEvents[K]] }[keyof HeartbeatMonitorEvents];

function record(monitor: HeartbeatMonitor): Recorded[] {
  const events: Recorded[] = [];
  for (const name of ['join', 'suspect', 'dead', 'alive', 'leave'] as const) {
    monitor.on(name, (payload) => events.push([name, payload] as Recorded));
  }
  return events;
}

describe('HeartbeatMonitor', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('moves a silent node alive → suspect → dead, and back to alive on a heartbeat', async () => {
    const monitor = new HeartbeatMonitor({ detector: () => new FixedTimeoutDetector({ timeoutMs: 1000 }), deadAfterMs: 5000 });
    const events = record(monitor);
    const start = performance.now();
    monitor.add('a');
    expect(monitor.state('a')).toBe('alive');

    await vi.advanceTimersByTimeAsync(900);
    monitor.heartbeat('a');
    await vi.advanceTimersByTimeAsync(900);
    expect(monitor.state('a')).toBe('alive');
    await vi.advanceTimersByTimeAsync(200);
    expect(monitor.state('a')).toBe('suspect');
    await vi.advanceTimersByTimeAsync(4800);
    expect(monitor.state('a')).toBe('suspect');
    await vi.advanceTimersByTimeAsync(200);
    expect(monitor.state('a')).toBe('dead');
    monitor.heartbeat('a');
    expect(monitor.state('a')).toBe('alive');

    expect(events.map(([name]) => name)).toEqual(['join', 'suspect', 'dead', 'alive']);
    const [, suspect] = events[1] as ['suspect', HeartbeatMonitorEvents['suspect']];
    expect(suspect.id).toBe('a');
    expect(suspect.at - start).toBe(1900);
    expect(suspect.silenceMs).toBe(1000);
    expect(suspect.suspicion).toBe(1);
    const [, dead] = events[2] as ['dead', HeartbeatMonitorEvents['dead']];
    expect(dead.at - suspect.at).toBe(5000);
    const [, alive] = events[3] as ['alive', HeartbeatMonitorEvents['alive']];
    expect(alive.from).toBe('dead');
    expect(alive.downMs).toBe(alive.at - suspect.at);
    monitor.close();
  });

  it('recovers a suspect node straight to alive', async () => {
    const monitor = new HeartbeatMonitor({ detector: () => new FixedTimeoutDetector({ timeoutMs: 1000 }) });
    const events = record(monitor);
    monitor.add('a');
    await vi.advanceTimersByTimeAsync(1500);
    monitor.heartbeat('a');
    expect(events.map(([name, payload]) => `${name}:${'from' in payload ? payload.from : ''}`)).toEqual([
      'join:',
      'suspect:',
      'alive:suspect',
    ]);
    expect(monitor.stats()).toMatchObject({ suspicions: 1, recoveries: 1, alive: 1 });
    monitor.close();
  });

  it('detects a node that never sends a heartbeat, with phi accrual by default', async () => {
    const monitor = new HeartbeatMonitor();
    monitor.add('quiet');
    // Seeded at 1000 ± 250 ms with a 3 s acceptable pause: phi 8 after about 5.4 s.
    await vi.advanceTimersByTimeAsync(5000);
    expect(monitor.state('quiet')).toBe('alive');
    await vi.advanceTimersByTimeAsync(1000);
    expect(monitor.state('quiet')).toBe('suspect');
    monitor.close();
  });

  it('keeps a node with regular heartbeats alive', async () => {
    const monitor = new HeartbeatMonitor();
    const suspects: string[] = [];
    monitor.on('suspect', ({ id }) => suspects.push(id));
    monitor.add('a');
    for (let i = 0; i < 100; i++) {
      await vi.advanceTimersByTimeAsync(1000);
      monitor.heartbeat('a');
    }
    expect(suspects).toEqual([]);
    const stats = monitor.stats();
    expect(stats.nodes).toEqual([
      expect.objectContaining({ id: 'a', state: 'alive', heartbeats: 100, silenceMs: 0, lastHeartbeatAt: performance.now() }),
    ]);
    expect(stats.nodes[0]?.suspicion).toBeLessThan(1);
    expect(stats).toMatchObject({ alive: 1, suspect: 0, dead: 0, heartbeats: 100, suspicions: 0, recoveries: 0 });
    monitor.close();
  });

  it('adds unknown nodes on their first heartbeat, and removes nodes', () => {
    const monitor = new HeartbeatMonitor();
    const events = record(monitor);
    monitor.heartbeat('new');
    expect(monitor.add('new')).toBe(false);
    expect(monitor.stats()).toMatchObject({ heartbeats: 1, nodes: [expect.objectContaining({ id: 'new', heartbeats: 1 })] });
    expect(monitor.nodes()).toEqual(['new']);
    expect(monitor.remove('new')).toBe(true);
    expect(monitor.remove('new')).toBe(false);
    expect(monitor.state('new')).toBeUndefined();
    expect(events.map(([name]) => name)).toEqual(['join', 'leave']);
    expect(events[1]?.[1]).toMatchObject({ id: 'new', state: 'alive' });
    monitor.close();
  });

  it('lists nodes by state', async () => {
    const monitor = new HeartbeatMonitor({ detector: () => new FixedTimeoutDetector({ timeoutMs: 1000 }), deadAfterMs: 1000 });
    monitor.add('a');
    monitor.add('b');
    monitor.add('c');
    await vi.advanceTimersByTimeAsync(1000);
    monitor.heartbeat('a');
    await vi.advanceTimersByTimeAsync(1000);
    monitor.heartbeat('a');
    monitor.heartbeat('b');
    await vi.advanceTimersByTimeAsync(900);
    expect(monitor.nodes('alive')).toEqual(['a', 'b']);
    expect(monitor.nodes('dead')).toEqual(['c']);
    await vi.advanceTimersByTimeAsync(200);
    expect(monitor.nodes('suspect')).toEqual(['a', 'b']);
    monitor.close();
  });

  it('runs its check timer only while nodes are watched, and leaves no timer after close()', () => {
    const monitor = new HeartbeatMonitor();
    expect(vi.getTimerCount()).toBe(0);
    monitor.add('a');
    monitor.add('b');
    expect(vi.getTimerCount()).toBe(1);
    monitor.remove('a');
    monitor.remove('b');
    expect(vi.getTimerCount()).toBe(0);
    monitor.add('c');
    monitor.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(monitor.closed).toBe(true);
    monitor.close();
  });

  it('refuses new nodes after close() and ignores heartbeats', () => {
    const monitor = new HeartbeatMonitor();
    monitor.close();
    let error: unknown;
    try {
      monitor.add('a');
    } catch (e) {
      error = e;
    }
    expect(isFailureDetectorError(error)).toBe(true);
    expect((error as { code: string }).code).toBe('ERR_BALLAST_MONITOR_CLOSED');
    monitor.heartbeat('a');
    expect(monitor.nodes()).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('is disposable', () => {
    {
      using monitor = new HeartbeatMonitor();
      monitor.add('a');
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it('creates one detector per node, given the node id', () => {
    const ids: string[] = [];
    const monitor = new HeartbeatMonitor({
      detector: (id) => {
        ids.push(id);
        return new FixedTimeoutDetector();
      },
    });
    monitor.add('a');
    monitor.heartbeat('b');
    monitor.heartbeat('a');
    expect(ids).toEqual(['a', 'b']);
    monitor.close();
  });

  it.each([
    ['deadAfterMs', { deadAfterMs: -1 }],
    ['checkIntervalMs', { checkIntervalMs: 0 }],
    ['detector', { detector: 'phi' }],
  ])('rejects an invalid %s', (option, options) => {
    expect(() => new HeartbeatMonitor(options as never)).toThrow(expect.objectContaining({ code: 'ERR_BALLAST_INVALID_OPTION', option }));
  });
});

describe('HeartbeatMonitor timers', () => {
  it('never keeps the process alive: its check timer is unref’d', () => {
    const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timeouts();
    const monitor = new HeartbeatMonitor();
    monitor.add('a');
    // Ref'd timers are listed as active resources; unref'd ones are not.
    expect(timeouts()).toBe(before);
    const control = setInterval(() => undefined, 1000);
    expect(timeouts()).toBe(before + 1);
    clearInterval(control);
    monitor.close();
  });
});
