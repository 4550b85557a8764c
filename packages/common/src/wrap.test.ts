import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { isTimeoutError } from './abort.ts';
import { isInvalidOptionError } from './errors.ts';
import { CallScope, type Policy, type PolicyContext, type PolicyExecuteOptions } from './policy.ts';
import { TimeoutPolicy } from './timeout.ts';
import { wrap } from './wrap.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A policy that records the order it runs in and the scope it was given, then joins it. */
function recorder(name: string, log: string[]): Policy & { scopes: unknown[] } {
  const scopes: unknown[] = [];
  return {
    scopes,
    async execute<T>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: PolicyExecuteOptions<T>): Promise<T> {
      scopes.push(options);
      log.push(`${name}:in`);
      try {
        return await fn(options as PolicyContext);
      } finally {
        log.push(`${name}:out`);
      }
    },
  };
}

describe('wrap', () => {
  it('runs policies outermost first and hands one scope down the whole chain', async () => {
    const log: string[] = [];
    const a = recorder('a', log);
    const b = recorder('b', log);
    let context: PolicyContext | undefined;
    const result = await wrap(a, b).execute(async (c) => {
      log.push('fn');
      context = c;
      return 'value';
    });
    expect(result).toBe('value');
    expect(log).toEqual(['a:in', 'b:in', 'fn', 'b:out', 'a:out']);
    expect(a.scopes[0]).toBeInstanceOf(CallScope);
    expect(b.scopes[0]).toBe(a.scopes[0]);
    expect(context).toBe(a.scopes[0]);
    expect(context?.attempt).toBe(1);
  });

  it('one linked signal: the caller aborts the innermost work through every layer', async () => {
    const timeout = new TimeoutPolicy(1_000);
    const caller = new AbortController();
    let signal: AbortSignal | undefined;
    const pending = wrap(recorder('a', []), timeout)
      .execute(
        (c) => {
          signal = c.signal;
          return new Promise<never>(() => {});
        },
        { signal: caller.signal },
      )
      .catch((e: unknown) => e);
    caller.abort(new Error('client left'));
    expect(await pending).toMatchObject({ message: 'client left' });
    expect(signal?.aborted).toBe(true);
    timeout.close();
  });

  it('an inner timeout aborts only what is inside it', async () => {
    const outer = recorder('outer', []);
    const timeout = new TimeoutPolicy(50);
    let inner: AbortSignal | undefined;
    const pending = wrap(outer, timeout)
      .execute((c) => {
        inner = c.signal;
        return new Promise<never>(() => {});
      })
      .catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(50);
    expect(isTimeoutError(await pending)).toBe(true);
    expect(inner?.aborted).toBe(true);
    expect((outer.scopes[0] as CallScope).aborted).toBe(false);
    timeout.close();
  });

  it('passes the classifier to every policy of the chain', async () => {
    const classify = () => 'success' as const;
    const a = recorder('a', []);
    await wrap(a).execute(async () => 1, { classify });
    expect((a.scopes[0] as CallScope).classify).toBe(classify);
  });

  it('types the result as fn returns it, and wrap<R> narrows what the chain accepts', async () => {
    const chain = wrap(recorder('a', []));
    expectTypeOf(chain.execute(async () => ({ id: 1 }))).toEqualTypeOf<Promise<{ id: number }>>();
    const typed: Policy<Response> = {
      execute: (fn) => Promise.resolve(fn({ attempt: 1, signal: new AbortController().signal })),
    };
    const responses = wrap<Response>(typed);
    // @ts-expect-error a chain of policies for Response results takes no other result
    void (() => responses.execute(async () => 42));
    expectTypeOf(responses.execute(async () => new Response())).toEqualTypeOf<Promise<Response>>();
  });

  it('a chain is a policy: nested chains and chains joined from a context share the scope', async () => {
    const log: string[] = [];
    const a = recorder('a', log);
    const b = recorder('b', log);
    const c = recorder('c', log);
    await wrap(a, wrap(b, c)).execute(async () => log.push('fn'));
    expect(log).toEqual(['a:in', 'b:in', 'c:in', 'fn', 'c:out', 'b:out', 'a:out']);
    expect(c.scopes[0]).toBe(a.scopes[0]);
  });

  it('an empty chain runs fn; sync throws become rejections', async () => {
    await expect(wrap().execute(() => 3)).resolves.toBe(3);
    await expect(
      wrap().execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
  });

  it('releases the listener it put on the caller signal', async () => {
    const caller = new AbortController();
    const remove = vi.spyOn(caller.signal, 'removeEventListener');
    const timeout = new TimeoutPolicy(1_000);
    await wrap(timeout).execute(async () => 1, { signal: caller.signal });
    expect(remove).toHaveBeenCalled();
    timeout.close();
  });

  it('refuses what is not a policy, and a bad fn or signal, by name', async () => {
    let error: unknown;
    try {
      wrap({} as Policy);
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error)).toBe(true);
    expect(error).toMatchObject({ option: 'policies[0]' });
    await expect(wrap().execute(1 as never)).rejects.toMatchObject({ option: 'fn' });
    await expect(wrap().execute(async () => 1, { signal: 'x' as never })).rejects.toMatchObject({ option: 'signal' });
  });
});
