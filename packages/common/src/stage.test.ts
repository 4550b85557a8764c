import { describe, expect, it } from 'vitest';
import { CallScope, type Policy, type PolicyContext, type PolicyExecuteOptions } from './policy.ts';
import {
  type CallSink,
  declareStaged,
  forward,
  isStaged,
  refuse,
  runAsPromise,
  runInside,
  runStage,
  type Stage,
  StageCall,
} from './stage.ts';
import { wrap } from './wrap.ts';

/** One call through a {@link Tap}: logs the outcome it hears, then passes it outward. */
class TapCall extends StageCall {
  declare readonly tap: Tap;
  constructor(tap: Tap, options: PolicyExecuteOptions<never> | undefined) {
    super(options, CallScope.isScope(options) ? options : undefined);
    this.tap = tap;
  }
  settle(ok: boolean, value: unknown): void {
    this.tap.log.push(`${this.tap.name}:${ok ? 'ok' : 'error'}`);
    this.release();
    this.report(ok, value);
  }
}

/** A staged policy that records what it sees. */
class Tap implements Policy {
  static {
    declareStaged(Tap, function (fn, options, sink, inner) {
      this.log.push(`${this.name}:in:${sink === undefined ? 'promise' : 'sink'}`);
      const call = new TapCall(this, options);
      const promise = call.attach(sink);
      runInside(fn, inner, call, call);
      return promise;
    });
  }
  readonly name: string;
  readonly log: string[];
  constructor(name: string, log: string[]) {
    this.name = name;
    this.log = log;
  }
  execute<T>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: PolicyExecuteOptions<T>): Promise<T> {
    return (this as unknown as { [runStage]: Stage['policy'][typeof runStage] })[runStage](
      fn,
      options as PolicyExecuteOptions<never>,
      undefined,
      undefined,
    ) as Promise<T>;
  }
}

describe('policies as stages of one call', () => {
  it('a chain of staged policies runs fn once, hands outcomes inward-out through sinks, and settles one promise', async () => {
    const log: string[] = [];
    const a = new Tap('a', log);
    const b = new Tap('b', log);
    const c = new Tap('c', log);
    let runs = 0;
    const value = await wrap(a, b, c).execute(async () => {
      runs++;
      log.push('fn');
      return 'value';
    });
    expect(value).toBe('value');
    expect(runs).toBe(1);
    // Only the outermost made a promise; the others reported to the stage outside them.
    expect(log).toEqual(['a:in:promise', 'b:in:sink', 'c:in:sink', 'fn', 'c:ok', 'b:ok', 'a:ok']);
  });

  it('the context fn receives is the innermost stage’s scope, a child of each scope outside it', async () => {
    const log: string[] = [];
    let context: PolicyContext | undefined;
    await wrap(new Tap('a', log), new Tap('b', log)).execute((c) => {
      context = c;
      return 1;
    });
    expect(context).toBeInstanceOf(TapCall);
    expect((context as TapCall).tap.name).toBe('b');
  });

  it('errors, synchronous throws and plain values travel the same way', async () => {
    const log: string[] = [];
    const chain = wrap(new Tap('a', log), new Tap('b', log));
    await expect(chain.execute(() => 3)).resolves.toBe(3);
    await expect(
      chain.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await expect(chain.execute(() => Promise.reject(new Error('async')))).rejects.toThrow('async');
    expect(log.filter((l) => l.endsWith(':error'))).toEqual(['b:error', 'a:error', 'b:error', 'a:error']);
  });

  it('a policy that is not staged runs through its own execute, the stages inside it in the function it calls', async () => {
    const log: string[] = [];
    const foreign: Policy = {
      async execute(fn, options) {
        log.push('foreign:in');
        try {
          return await fn(options as PolicyContext);
        } finally {
          log.push('foreign:out');
        }
      },
    };
    expect(isStaged(foreign)).toBe(false);
    expect(isStaged(new Tap('x', []))).toBe(true);
    await wrap(new Tap('a', log), foreign, new Tap('b', log)).execute(async () => log.push('fn'));
    expect(log).toEqual(['a:in:promise', 'foreign:in', 'b:in:sink', 'fn', 'b:ok', 'foreign:out', 'a:ok']);
  });
});

describe('stage helpers', () => {
  const recorder = (): CallSink & { got: Array<[boolean, unknown]> } => {
    const got: Array<[boolean, unknown]> = [];
    return { got, settle: (ok, value) => got.push([ok, value]) };
  };

  it('refuse() reports to a sink, or rejects without one', async () => {
    const sink = recorder();
    expect(refuse(sink, 'no')).toBeUndefined();
    expect(sink.got).toEqual([[false, 'no']]);
    await expect(refuse(undefined, 'no')).rejects.toBe('no');
  });

  it('forward() hands a promise’s outcome to a sink, or returns the promise without one', async () => {
    const sink = recorder();
    forward(sink, Promise.resolve(1));
    forward(sink, Promise.reject(new Error('x')));
    await new Promise((resolve) => setImmediate(resolve));
    expect(sink.got.map(([ok]) => ok)).toEqual([true, false]);
    const settled = Promise.resolve(2);
    expect(forward(undefined, settled)).toBe(settled);
  });

  it('runAsPromise() runs fn, or the stages before it, as a promise; a synchronous throw rejects it', async () => {
    const scope = CallScope.root();
    await expect(runAsPromise(() => 1, undefined, scope)).resolves.toBe(1);
    await expect(
      runAsPromise(
        () => {
          throw new Error('sync');
        },
        undefined,
        scope,
      ),
    ).rejects.toThrow('sync');
    const log: string[] = [];
    const inner: Stage = { policy: new Tap('t', log) as unknown as Stage['policy'], next: undefined };
    await expect(runAsPromise(() => 2, inner, scope)).resolves.toBe(2);
    expect(log).toEqual(['t:in:sink', 't:ok']);
  });

  it('runInside() never leaves a rejection unhandled, even after the sink has settled otherwise', async () => {
    const sink = recorder();
    runInside(() => Promise.reject(new Error('late')), undefined, CallScope.root(), sink);
    await new Promise((resolve) => setImmediate(resolve));
    expect(sink.got).toHaveLength(1);
  });
});
