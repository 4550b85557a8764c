import { afterEach, describe, expect, it, vi } from 'vitest';
import { Emitter } from './events.ts';

type Events = { open: { key: string }; close: undefined };

describe('Emitter', () => {
  afterEach(() => vi.useRealTimers());

  it('delivers typed payloads and unsubscribes', () => {
    const events = new Emitter<Events>();
    const seen: string[] = [];
    const off = events.on('open', ({ key }) => seen.push(key));
    events.emit('open', { key: 'a' });
    off();
    off();
    events.emit('open', { key: 'b' });
    expect(seen).toEqual(['a']);
    expect(events.listenerCount()).toBe(0);
    expect(events.has('open')).toBe(false);
  });

  it('calls a once listener a single time', () => {
    const events = new Emitter<Events>();
    const listener = vi.fn();
    events.once('close', listener);
    events.emit('close', undefined);
    events.emit('close', undefined);
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it('keeps calling listeners when one throws, and reports the error', async () => {
    const events = new Emitter<Events>();
    const after = vi.fn();
    events.on('open', () => {
      throw new Error('listener bug');
    });
    events.on('open', after);
    const reported = new Promise<unknown>((resolve) => {
      const original = globalThis.queueMicrotask;
      vi.spyOn(globalThis, 'queueMicrotask').mockImplementationOnce((cb) =>
        original(() => {
          try {
            cb();
          } catch (error) {
            resolve(error);
          }
        }),
      );
    });
    events.emit('open', { key: 'x' });
    expect(after).toHaveBeenCalledWith({ key: 'x' });
    expect(await reported).toMatchObject({ message: 'listener bug' });
  });

  it('lets a listener unsubscribe another during emit without skipping', () => {
    const events = new Emitter<Events>();
    const calls: number[] = [];
    let offSecond = (): void => {};
    events.on('open', () => {
      calls.push(1);
      offSecond();
    });
    offSecond = events.on('open', () => calls.push(2));
    events.emit('open', { key: 'a' });
    events.emit('open', { key: 'b' });
    expect(calls).toEqual([1, 2, 1]);
  });
});
