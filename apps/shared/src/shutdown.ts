/** What {@link onShutdown} listens on: the process, or an emitter standing in for it in tests. */
export interface SignalSource {
  once(signal: 'SIGTERM' | 'SIGINT', listener: () => unknown): unknown;
}

/**
 * The end of every service's `main.ts`: runs `stop` once, on the first SIGTERM or SIGINT
 * (a second signal while it runs does not start it again; a second SIGTERM after it
 * ends the process as Node does by default). `stop` closes the servers first, then what
 * they used. A `stop` that fails is an unhandled rejection: the process exits with status 1.
 *
 * @example
 * ```ts
 * onShutdown(async () => {
 *   await server.close();
 *   await queue.close();
 * });
 * ```
 */
export function onShutdown(stop: () => Promise<void> | void, signals: SignalSource = process): void {
  let stopping = false;
  const once = (): Promise<void> | void => {
    if (stopping) return;
    stopping = true;
    return stop();
  };
  signals.once('SIGTERM', once);
  signals.once('SIGINT', once);
}
