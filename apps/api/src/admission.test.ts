import { InProcessQueue, type ServiceStats } from '@ballast/app-queue';
import { isShedError } from '@ballast/backpressure';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Admission, type AdmissionOptions } from './admission.ts';

afterEach(() => {
  vi.useRealTimers();
});

/** The queue's feed as it would read: `recentMs` newest first, stamped `updatedAt` (epoch ms). */
function feed(recentMs: number[], updatedAt = Date.now()): ServiceStats {
  const sorted = [...recentMs].sort((a, b) => a - b);
  const median = sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
  return { samples: recentMs.length, meanMs: 0, recentMs, medianMs: median, p90Ms: 0, clampedMeanMs: 0, updatedAt };
}

function admission(stats: () => ServiceStats, depth: () => number, options: AdmissionOptions = {}): Admission {
  return new Admission(
    { depth: async () => depth(), serviceStats: async () => stats() },
    { workerSlots: 2, depthCacheMs: 0, serviceCacheMs: 0, probeRatio: 0, ...options },
  );
}

describe('Admission.serviceEstimateMs', () => {
  const a = admission(
    () => feed([]),
    () => 0,
  );

  it('is the prior before any evidence', () => {
    expect(a.serviceEstimateMs(feed([]))).toBe(100);
  });

  it('cannot be set by one pathological sample, early or late', () => {
    // The first conversion ever took 10.7 s: the prior still holds the estimate near 100 ms.
    expect(a.serviceEstimateMs(feed([10_700]))).toBeLessThan(200);
    // Among 63 ordinary 40 ms conversions, a 10.7 s one moves the estimate by at most 4 × median / 64.
    const ordinary = Array<number>(63).fill(40);
    const estimate = a.serviceEstimateMs(feed([10_700, ...ordinary]));
    expect(estimate - 40).toBeLessThanOrEqual((4 * 40) / 64);
  });

  it('follows a real slowdown: when most conversions take long, so does the estimate', () => {
    expect(a.serviceEstimateMs(feed(Array<number>(64).fill(900)))).toBe(900);
    expect(a.serviceEstimateMs(feed([...Array<number>(40).fill(900), ...Array<number>(24).fill(40)]))).toBeGreaterThan(500);
  });

  it('fades stale evidence towards the prior, halving the distance every staleHalfLifeMs', () => {
    const now = Date.now();
    const slow = Array<number>(64).fill(2100);
    expect(a.serviceEstimateMs(feed(slow, now - 9_000))).toBe(2100); // not stale yet
    expect(a.serviceEstimateMs(feed(slow, now - 20_000))).toBeCloseTo(1100, -1); // one half-life past
    expect(a.serviceEstimateMs(feed(slow, now - 60_000))).toBeLessThan(170);
  });
});

describe('Admission.admit', () => {
  it('sheds on expected wait, and lets probeRatio of those through as probes', async () => {
    let roll = 0.5;
    const slow = feed(Array<number>(64).fill(1000));
    const a = admission(
      () => slow,
      () => 10,
      { probeRatio: 0.1, random: () => roll },
    );
    const error = await a.admit(5000).catch((e: unknown) => e);
    expect(isShedError(error) && error.reason).toBe('queueTimeout');
    roll = 0.05;
    const permit = await a.admit(5000);
    expect(a.stats().probes).toBe(1);
    permit.release();
    a[Symbol.dispose]();
  });

  it('never probes past the in-flight limit', async () => {
    const a = admission(
      () => feed([]),
      () => 0,
      { maxInflight: 1, probeRatio: 1 },
    );
    const held = await a.admit(5000);
    const error = await a.admit(5000).catch((e: unknown) => e);
    expect(isShedError(error) && error.reason).toBe('limit');
    held.release();
    a[Symbol.dispose]();
  });

  it('admits again once stale evidence of a slowdown has faded (fake time)', async () => {
    vi.useFakeTimers();
    const slowAt = Date.now();
    const a = admission(
      () => feed(Array<number>(64).fill(8000), slowAt),
      () => 3, // one job waiting beyond the two slots
    );
    await expect(a.admit(5000)).rejects.toSatisfy(isShedError);
    await vi.advanceTimersByTimeAsync(60_000);
    const permit = await a.admit(5000);
    permit.release();
    a[Symbol.dispose]();
  });

  it('does not hold a request on a depth reading that does not come (a queue failing over): the last one stands (fake time)', async () => {
    vi.useFakeTimers();
    let depth: () => Promise<number> = async () => 0;
    const a = new Admission(
      { depth: () => depth(), serviceStats: async () => feed(Array<number>(64).fill(100), Date.now()) },
      { workerSlots: 2, depthCacheMs: 0, serviceCacheMs: 0, probeRatio: 0, depthWaitMs: 250 },
    );
    (await a.admit(5000)).release();
    depth = () => Promise.reject(new Error('unreachable'));
    (await a.admit(5000)).release(); // a failed reading: the last one stands
    depth = () => new Promise<number>(() => {}); // no answer at all
    let admitted = false;
    const pending = a.admit(5000).then((permit) => {
      admitted = true;
      permit.release();
    });
    await vi.advanceTimersByTimeAsync(249);
    expect(admitted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await pending;
    expect(admitted).toBe(true);
    a[Symbol.dispose]();
  });

  it('reads every worker’s conversions from the queue’s feed, async jobs included', async () => {
    const queue = new InProcessQueue();
    const a = new Admission(queue, { workerSlots: 1, depthCacheMs: 0, serviceCacheMs: 0 });
    const consumer = queue.consumer('w');
    for (let i = 0; i < 10; i++) {
      await queue.enqueue({ data: Buffer.alloc(1), params: {}, deadlineAt: Date.now() + 60_000 });
      const lease = await consumer.next();
      await lease.complete(Buffer.alloc(1), {});
    }
    await a.admit(60_000).then((p) => p.release());
    expect(a.stats().samples).toBe(10);
    expect(a.stats().serviceMs).toBeLessThan(100); // ten quick jobs outweigh the prior
    await consumer.close();
    await queue.close();
    a[Symbol.dispose]();
  });
});

describe('Admission.admit in a burst', () => {
  // 2 slots, 100 ms conversions: depth 20 means (20 − 2 + 1) × 100 / 2 = 950 ms of expected wait.
  const steady = feed(Array<number>(64).fill(100));
  function setup(options: AdmissionOptions = {}) {
    let t = 0;
    let depth = 0;
    const a = admission(
      () => ({ ...steady, updatedAt: Date.now() }),
      () => depth,
      { clock: { now: () => t }, ...options },
    );
    return {
      a,
      at: (ms: number) => {
        t = ms;
      },
      depth: (n: number) => {
        depth = n;
      },
    };
  }
  const admitted = async (a: Admission, deadlineMs: number): Promise<boolean> => {
    const permit = await a.admit(deadlineMs).catch((error: unknown) => {
      if (isShedError(error)) return undefined;
      throw error;
    });
    permit?.release();
    return permit !== undefined;
  };

  it('judges a backlog that forms after a short queue against the deadline for burstMs, then against maxExpectedWaitMs', async () => {
    const { a, at, depth } = setup();
    expect(await admitted(a, 5000)).toBe(true); // short since t = 0
    at(3000);
    depth(20); // the requests a failover held back land at once
    expect(await admitted(a, 5000)).toBe(true); // 950 ms ≤ 5000 − 100
    expect(await admitted(a, 1000)).toBe(false); // its own deadline still bounds it
    at(4999);
    expect(await admitted(a, 5000)).toBe(true);
    at(5000); // the backlog stood burstMs: overload
    expect(await admitted(a, 5000)).toBe(false);
    a[Symbol.dispose]();
  });

  it('gives a standing overload no second burst after a short dip, only after burstMs of a short queue', async () => {
    const { a, at, depth } = setup();
    at(2000);
    depth(20);
    expect(await admitted(a, 5000)).toBe(true); // burst until 4000
    at(4000);
    expect(await admitted(a, 5000)).toBe(false);
    depth(2); // drained for a moment…
    at(4500);
    expect(await admitted(a, 5000)).toBe(true);
    depth(20); // …and back: still overload
    at(5000);
    expect(await admitted(a, 5000)).toBe(false);
    depth(2);
    at(6000);
    expect(await admitted(a, 5000)).toBe(true);
    at(8000); // short for burstMs: the next backlog is a burst again
    depth(20);
    expect(await admitted(a, 5000)).toBe(true);
    a[Symbol.dispose]();
  });

  it('sheds a backlog at maxExpectedWaitMs from the start with burstMs 0, and right after start-up', async () => {
    const off = setup({ burstMs: 0 });
    off.at(10_000);
    off.depth(20);
    expect(await admitted(off.a, 5000)).toBe(false);
    off.a[Symbol.dispose]();
    const fresh = setup(); // no evidence yet that the queue was short for burstMs
    fresh.at(1000);
    fresh.depth(20);
    expect(await admitted(fresh.a, 5000)).toBe(false);
    fresh.a[Symbol.dispose]();
    expect(() =>
      admission(
        () => steady,
        () => 0,
        { burstMs: -1 },
      ),
    ).toThrow(/burstMs/);
  });
});

describe('Admission.admit with several jobs', () => {
  it('admits a request of several jobs only if its last job can start in time', async () => {
    // 2 slots, 100 ms per job, 2 jobs queued: one job waits (2 − 2 + 1) × 100 / 2 = 50 ms;
    // the sixth job of a set waits behind the set's other five too: (2 + 5 − 2 + 1) × 100 / 2 = 300 ms.
    const a = admission(
      () => feed(Array<number>(64).fill(100)),
      () => 2,
      { maxExpectedWaitMs: 200 },
    );
    const permit = await a.admit(5000);
    permit.release();
    const error = await a.admit(5000, 6).catch((e: unknown) => e);
    expect(isShedError(error) && error.reason).toBe('queueTimeout');
    (await a.admit(5000, 4)).release(); // (2 + 3 − 2 + 1) × 100 / 2 = 200 ms: within
    a[Symbol.dispose]();
  });
});

describe('Admission.room', () => {
  it('is the most jobs admit() would take now: the rest of the budget in conversions, after the queue ahead', async () => {
    let depth = 0;
    // 100 ms conversions on 2 slots; budget min(400, deadline − 100).
    const a = admission(
      () => feed(Array<number>(64).fill(100)),
      () => depth,
    );
    // Empty queue: 2 slots start at once, then 400 ms × 2 slots ÷ 100 ms = 8 more.
    expect(await a.room(1000)).toBe(10);
    depth = 6;
    expect(await a.room(1000)).toBe(4);
    // Exactly that many are admitted; one more is shed.
    const permit = await a.admit(1000, 4);
    permit.release();
    await expect(a.admit(1000, 5)).rejects.toSatisfy(isShedError);
    // admitFitting tells the request the room and admits what it settles on, in one step.
    const rooms: number[] = [];
    const fitted = await a.admitFitting(1000, (room) => {
      rooms.push(room);
      return room;
    });
    fitted.release();
    expect(rooms).toEqual([4]);
    await expect(a.admitFitting(1000, (room) => room + 1)).rejects.toSatisfy(isShedError);
    // A deadline leaving 150 ms to wait: 150 × 2 ÷ 100 = 3, + 2 − 6 → none.
    expect(await a.room(250)).toBe(0);
    depth = 30;
    expect(await a.room(1000)).toBe(0);
    // A deadline shorter than a conversion leaves no room at all, even with the queue empty.
    depth = 0;
    expect(await a.room(50)).toBe(0);
  });
});
