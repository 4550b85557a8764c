import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { onShutdown } from './shutdown.ts';

describe('onShutdown', () => {
  it('stops once, on the first SIGTERM or SIGINT, however many follow', async () => {
    for (const first of ['SIGTERM', 'SIGINT'] as const) {
      const signals = new EventEmitter();
      let stops = 0;
      let release!: () => void;
      onShutdown(
        () =>
          new Promise<void>((resolve) => {
            stops++;
            release = resolve;
          }),
        signals,
      );
      expect(stops).toBe(0);
      signals.emit(first);
      signals.emit(first === 'SIGTERM' ? 'SIGINT' : 'SIGTERM');
      expect(stops).toBe(1);
      release();
      await Promise.resolve();
      signals.emit('SIGINT');
      expect(stops).toBe(1);
    }
  });

  it('leaves a second SIGTERM to Node’s default (its listener is gone)', () => {
    const signals = new EventEmitter();
    onShutdown(() => {}, signals);
    expect(signals.listenerCount('SIGTERM')).toBe(1);
    signals.emit('SIGTERM');
    expect(signals.listenerCount('SIGTERM')).toBe(0);
  });
});
