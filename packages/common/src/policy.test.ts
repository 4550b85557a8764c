import { describe, expect, it, vi } from 'vitest';
import { isInvalidOptionError } from './errors.ts';
import { CallScope } from './policy.ts';

describe('CallScope', () => {
  it('creates no AbortController until the signal is read, and none is linked to the caller until needed', () => {
    const caller = new AbortController();
    const add = vi.spyOn(caller.signal, 'addEventListener');
    const root = CallScope.root(caller.signal);
    const child = root.child();
    expect(add).toHaveBeenCalledTimes(1); // a child needs to hear about the caller
    const signal = child.signal;
    expect(signal.aborted).toBe(false);
    caller.abort(new Error('gone'));
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toMatchObject({ message: 'gone' });
    expect(root.aborted && child.aborted).toBe(true);
  });

  it('a root without children or a read signal never listens to the caller', () => {
    const caller = new AbortController();
    const add = vi.spyOn(caller.signal, 'addEventListener');
    const root = CallScope.root(caller.signal);
    root.release();
    expect(add).not.toHaveBeenCalled();
  });

  it('aborts flow down, never up, and onAbort runs before the signal aborts', () => {
    const root = CallScope.root();
    const a = root.child();
    const b = root.child();
    const grandchild = a.child();
    const order: string[] = [];
    const signal = grandchild.signal;
    signal.addEventListener('abort', () => order.push('signal'));
    grandchild.onAbort = () => order.push(`hook:${signal.aborted}`);
    a.abort('stop');
    expect(order).toEqual(['hook:false', 'signal']);
    expect(root.aborted).toBe(false);
    expect(b.aborted).toBe(false);
    expect(grandchild.reason).toBe('stop');
  });

  it('a released child no longer follows its parent; its signal stays as it was', () => {
    const root = CallScope.root();
    const child = root.child();
    const signal = child.signal;
    child.release();
    root.abort('late');
    expect(signal.aborted).toBe(false);
    expect(child.aborted).toBe(false);
  });

  it('release removes the listener from the caller signal', () => {
    const caller = new AbortController();
    const remove = vi.spyOn(caller.signal, 'removeEventListener');
    const root = CallScope.root(caller.signal);
    void root.signal;
    root.release();
    expect(remove).toHaveBeenCalledTimes(1);
  });

  it('starts aborted when the caller already is, and so do its children and signals', () => {
    const root = CallScope.root(AbortSignal.abort('before'));
    const child = root.child();
    expect(child.aborted).toBe(true);
    expect(child.signal.aborted).toBe(true);
    expect(child.signal.reason).toBe('before');
  });

  it('inherits attempt, classifier and task, and child(n) sets the attempt', () => {
    const classify = () => 'success' as const;
    const root = CallScope.root(undefined, classify, 'task');
    const child = root.child(3);
    expect(child.attempt).toBe(3);
    expect(child.child().attempt).toBe(3);
    expect(child.classify).toBe(classify);
    expect(child.task).toBe('task');
  });

  it('classifies an outcome once for the whole chain', () => {
    const classify = vi.fn(() => 'failure' as const);
    const root = CallScope.root(undefined, classify);
    const inner = root.child().child();
    const value = { status: 500 };
    expect(inner.verdict(true, value)).toBe('failure');
    expect(root.verdict(true, value)).toBe('failure');
    expect(classify).toHaveBeenCalledTimes(1);
    expect(classify).toHaveBeenCalledWith({ ok: true, value });
    expect(root.verdict(false, value)).toBe('failure');
    expect(classify).toHaveBeenCalledTimes(2);
    expect(CallScope.root().verdict(true, value)).toBeUndefined();
  });

  it('refuses a classifier answer that is not a verdict, naming classify', () => {
    const root = CallScope.root(undefined, (() => 'maybe') as never);
    let error: unknown;
    try {
      root.verdict(true, 1);
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error)).toBe(true);
    expect(error).toMatchObject({ option: 'classify' });
  });

  it('from() validates options and returns a scope handed down as is', () => {
    const scope = CallScope.root();
    expect(CallScope.from(scope)).toBe(scope);
    expect(() => CallScope.from({ signal: 'nope' as never })).toThrow(/signal must be an AbortSignal/);
    expect(() => CallScope.from({ classify: 1 as never })).toThrow(/classify must be a function/);
    expect(CallScope.from(undefined).aborted).toBe(false);
  });
});

describe('CallScope and a caller that aborted before anyone listened', () => {
  it('a child made after the caller aborted starts aborted, and so does the root', () => {
    const caller = new AbortController();
    const root = CallScope.root(caller.signal);
    caller.abort('gone');
    const child = root.child();
    expect(child.aborted).toBe(true);
    expect(child.reason).toBe('gone');
    expect(root.aborted).toBe(true);
  });

  it('a signal read after the caller aborted is aborted', () => {
    const caller = new AbortController();
    const root = CallScope.root(caller.signal);
    caller.abort('gone');
    expect(root.signal.aborted).toBe(true);
  });

  it('setting onAbort after the caller aborted runs it at once', () => {
    const caller = new AbortController();
    const root = CallScope.root(caller.signal);
    caller.abort('gone');
    const hook = vi.fn();
    root.onAbort = hook;
    expect(hook).toHaveBeenCalledWith('gone');
  });
});
