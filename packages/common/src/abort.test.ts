import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { linkSignal, sleep, TimeoutError } from './abort.ts';
import { isBallastError, isInvalidOptionError } from './errors.ts';
import { MAX_TIMER_MS } from './validate.ts';

describe('linkSignal', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('aborts with a TimeoutError when its own timeout fires, leaving the parent alone', async () => {
    const parent = new AbortController();
    const linked = linkSignal([parent.signal], 100);
    await vi.advanceTimersByTimeAsync(100);
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBeInstanceOf(TimeoutError);
    expect(isBallastError(linked.signal.reason)).toBe(true);
    expect(parent.signal.aborted).toBe(false);
  });

  it('follows a parent abort with the parent reason', () => {
    const parent = new AbortController();
    const linked = linkSignal([undefined, parent.signal], 1000);
    parent.abort(new Error('client went away'));
    expect(linked.signal.reason).toMatchObject({ message: 'client went away' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('is aborted at once when a parent already is', () => {
    const linked = linkSignal([AbortSignal.abort('gone')], 1000);
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe('gone');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aborting one linked signal leaves its siblings running', () => {
    const parent = new AbortController();
    const a = linkSignal([parent.signal]);
    const b = linkSignal([parent.signal]);
    a.abort(new Error('only a'));
    expect(a.signal.aborted).toBe(true);
    expect(b.signal.aborted).toBe(false);
    b.dispose();
  });

  it('dispose releases the timer and parent listeners', () => {
    const parent = new AbortController();
    const remove = vi.spyOn(parent.signal, 'removeEventListener');
    const linked = linkSignal([parent.signal], 1000);
    expect(vi.getTimerCount()).toBe(1);
    linked[Symbol.dispose]();
    expect(vi.getTimerCount()).toBe(0);
    expect(remove).toHaveBeenCalledTimes(1);
    parent.abort();
    expect(linked.signal.aborted).toBe(false);
  });
});

describe('sleep', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('resolves after the delay', async () => {
    let done = false;
    void sleep(50).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(49);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
  });

  it('rejects with the abort reason and clears its timer', async () => {
    const controller = new AbortController();
    const pending = sleep(1000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('waits the full delay beyond the timer limit, as a chain of timers', async () => {
    const delay = MAX_TIMER_MS * 2 + 5;
    let done = false;
    void sleep(delay).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(4);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an abort during a chained wait clears the current timer', async () => {
    const controller = new AbortController();
    const pending = sleep(MAX_TIMER_MS * 3, controller.signal);
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS + 10);
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
    expect(vi.getTimerCount()).toBe(0);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, '10' as unknown as number])('refuses %s by name', async (ms) => {
    const error = await sleep(ms).catch((e: unknown) => e);
    expect(isInvalidOptionError(error)).toBe(true);
    expect(error).toMatchObject({ option: 'ms' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('waits 0 ms for a negative delay', async () => {
    let done = false;
    void sleep(-5).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(true);
  });
});
