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

  it('keeps calling listeners when one throws, and reports the error to onListenerError', () => {
    const reported: Array<[unknown, PropertyKey]> = [];
    const events = new Emitter<Events>({ onListenerError: (error, event) => reported.push([error, event]) });
    const after = vi.fn();
    events.on('open', () => {
      throw new Error('listener bug');
    });
    events.on('open', after);
    events.emit('open', { key: 'x' });
    expect(after).toHaveBeenCalledWith({ key: 'x' });
    expect(reported).toEqual([[expect.objectContaining({ message: 'listener bug' }), 'open']]);
  });

  it('by default reports a throwing listener as a process warning, never as an uncaught exception', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    const uncaught = vi.fn();
    process.on('warning', onWarning);
    process.on('uncaughtException', uncaught);
    try {
      const events = new Emitter<Events>();
      events.on('open', () => {
        throw new Error('listener bug');
      });
      events.emit('open', { key: 'x' });
      // Warnings are delivered on the next tick; an uncaught exception would surface by then too.
      await new Promise((resolve) => setImmediate(resolve));
      expect(uncaught).not.toHaveBeenCalled();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ name: 'BallastListenerError', code: 'BALLAST_LISTENER_ERROR' });
      expect(warnings[0]?.message).toContain('"open"');
      expect((warnings[0] as Error & { cause: Error }).cause.message).toBe('listener bug');
    } finally {
      process.off('warning', onWarning);
      process.off('uncaughtException', uncaught);
    }
  });

  it('a throwing onListenerError is reported too, and emit still returns normally', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    try {
      const events = new Emitter<Events>({
        onListenerError: () => {
          throw new Error('handler bug');
        },
      });
      events.on('open', () => {
        throw new Error('listener bug');
      });
      expect(() => events.emit('open', { key: 'x' })).not.toThrow();
      await new Promise((resolve) => setImmediate(resolve));
      expect((warnings[0] as Error & { cause: Error }).cause.message).toBe('handler bug');
    } finally {
      process.off('warning', onWarning);
    }
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
