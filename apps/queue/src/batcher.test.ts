import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.ts';

describe('Batcher', () => {
  it('sends the items of one turn together and resolves each with its own result, in order', async () => {
    const sent: number[][] = [];
    const batcher = new Batcher<number, number>(async (items) => {
      sent.push(items);
      return items.map((i) => i * 10);
    });
    const results = await Promise.all([1, 2, 3].map((i) => batcher.submit(i)));
    expect(results).toEqual([10, 20, 30]);
    expect(sent).toEqual([[1, 2, 3]]);
  });

  it('rejects every item of a batch whose send answers the wrong number of results', async () => {
    let calls = 0;
    const batcher = new Batcher<number, number>(async (items) => (++calls === 1 ? items.slice(1) : items));
    const outcomes = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect(String((outcome as PromiseRejectedResult).reason)).toContain('1 results for 2 items');
    }
    // The batcher goes on: the next batch is sent and answered.
    await expect(batcher.submit(5)).resolves.toBe(5);
  });

  it('sends what arrives while a batch is under way in the next one, up to maxBatch', async () => {
    const sent: number[][] = [];
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const batcher = new Batcher<number, number>(async (items) => {
      sent.push(items);
      if (sent.length === 1) await gate;
      return items;
    }, 2);
    const first = batcher.submit(0);
    await new Promise((r) => setImmediate(r));
    const rest = [1, 2, 3].map((i) => batcher.submit(i));
    release();
    await Promise.all([first, ...rest]);
    expect(sent).toEqual([[0], [1, 2], [3]]);
  });
});
