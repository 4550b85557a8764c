import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isFailureDetectorError } from './errors.ts';
import type { HeartbeatMessage } from './message.ts';
import { HeartbeatSender } from './sender.ts';

describe('HeartbeatSender', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends at once, then every interval drawn within intervalMs × (1 ± jitter)', async () => {
    const sentAt: number[] = [];
    const messages: HeartbeatMessage[] = [];
    const start = performance.now();
    let r = 0;
    const randoms = [0, 0.75, 0.5];
    const sender = new HeartbeatSender(
      { id: 'api-1', intervalMs: 1000, jitter: 0.2, random: () => randoms[r++ % 3] as number },
      async (message) => {
        sentAt.push(performance.now() - start);
        messages.push(message);
      },
    );
    await vi.advanceTimersByTimeAsync(5000);
    await sender.close();
    // Delays: 800, 1100, 1000, 800, ...
    expect(sentAt.slice(0, 5).map(Math.round)).toEqual([0, 800, 1900, 2900, 3700]);
    expect(messages.slice(0, 3)).toEqual([
      { id: 'api-1', seq: 0 },
      { id: 'api-1', seq: 1 },
      { id: 'api-1', seq: 2 },
    ]);
    expect(sender.stats()).toMatchObject({ sent: sentAt.length, failed: 0 });
  });

  it('reports failures as events with a typed error and keeps sending', async () => {
    const sender = new HeartbeatSender({ id: 'a', intervalMs: 100, jitter: 0 }, async (message) => {
      if (message.seq % 2 === 1) throw new Error('connection refused');
    });
    const failures: unknown[] = [];
    sender.on('fail', ({ seq, error }) => failures.push([seq, error.code, error.message]));
    await vi.advanceTimersByTimeAsync(350);
    expect(failures).toEqual([
      [1, 'ERR_BALLAST_HEARTBEAT_FAILED', 'heartbeat 1 of a failed: connection refused'],
      [3, 'ERR_BALLAST_HEARTBEAT_FAILED', 'heartbeat 3 of a failed: connection refused'],
    ]);
    expect(sender.stats()).toMatchObject({ sent: 2, failed: 2 });
    expect(isFailureDetectorError(sender.stats().lastError)).toBe(true);
    expect(sender.stats().lastError?.cause).toBeInstanceOf(Error);
    await sender.close();
  });

  it('aborts a delivery that takes longer than timeoutMs, and skips beats while one is under way', async () => {
    let calls = 0;
    const sender = new HeartbeatSender({ id: 'a', intervalMs: 100, jitter: 0, timeoutMs: 250 }, (_message, signal) => {
      calls++;
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    });
    const failures: string[] = [];
    sender.on('fail', ({ error }) => failures.push(error.message));
    await vi.advanceTimersByTimeAsync(260);
    expect(calls).toBe(1);
    expect(failures).toEqual(['heartbeat 0 of a failed: timed out after 250 ms']);
    await vi.advanceTimersByTimeAsync(50);
    expect(calls).toBe(2);
    await sender.close();
  });

  it('close() aborts the delivery under way, reports no failure for it, and leaves no timer', async () => {
    let aborted = false;
    const sender = new HeartbeatSender({ id: 'a', intervalMs: 1000 }, (_message, signal) => {
      return new Promise((_, reject) =>
        signal.addEventListener(
          'abort',
          () => {
            aborted = true;
            reject(signal.reason);
          },
          { once: true },
        ),
      );
    });
    const failures: unknown[] = [];
    sender.on('fail', (event) => failures.push(event));
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    await sender.close();
    expect(aborted).toBe(true);
    expect(failures).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
    await sender.close();
  });

  it('is async-disposable', async () => {
    {
      await using sender = new HeartbeatSender({ id: 'a' }, async () => undefined);
      expect(sender.id).toBe('a');
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it('survives a transport that throws synchronously', async () => {
    const sender = new HeartbeatSender({ id: 'a', intervalMs: 100 }, (() => {
      throw new Error('boom');
    }) as never);
    await vi.advanceTimersByTimeAsync(0);
    expect(sender.stats().failed).toBe(1);
    await sender.close();
  });

  it.each([
    ['id', { id: '' }],
    ['intervalMs', { id: 'a', intervalMs: 0 }],
    ['jitter', { id: 'a', jitter: 2 }],
    ['timeoutMs', { id: 'a', timeoutMs: -1 }],
    ['random', { id: 'a', random: 0.5 }],
  ])('rejects an invalid %s', (option, options) => {
    expect(() => new HeartbeatSender(options as never, async () => undefined)).toThrow(
      expect.objectContaining({ code: 'ERR_BALLAST_INVALID_OPTION', option }),
    );
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('HeartbeatSender timers', () => {
  it('never keeps the process alive: its timer is unref’d', async () => {
    const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timeouts();
    const sender = new HeartbeatSender({ id: 'a', intervalMs: 60_000 }, async () => undefined);
    // Let the first delivery finish: its timeout is held only while it is under way.
    await new Promise((resolve) => setImmediate(resolve));
    expect(timeouts()).toBe(before);
    const control = setTimeout(() => undefined, 1000);
    expect(timeouts()).toBe(before + 1);
    clearTimeout(control);
    await sender.close();
  });
});
