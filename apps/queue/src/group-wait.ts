/**
 * Group commit for `WAIT`: a `WAIT` on a connection vouches for every write sent on
 * that connection before it, so concurrent jobs share one. {@link GroupWait.after}
 * gives a `WAIT` sent after the call — the one already scheduled for the end of this
 * tick if there is one, else a new one — so every write sent in the same tick shares
 * it, and a `WAIT` sent before a write never vouches for it. With the queue's batched
 * scripts, one `WAIT` covers every job of a batch (and of any other batch sent in the
 * same tick), sent right behind the batch.
 */
export class GroupWait {
  readonly #send: () => Promise<number>;
  #next: Promise<number> | undefined;
  /** `WAIT` commands sent so far. */
  sent = 0;

  /** @param send sends one `WAIT` and resolves with the number of replicas that confirmed. */
  constructor(send: () => Promise<number>) {
    this.#send = send;
  }

  /**
   * Resolves with the replicas that hold every write sent on the connection before this
   * call: a `WAIT` sent at the end of the current tick, shared with every caller of the tick.
   */
  after(): Promise<number> {
    if (this.#next) return this.#next;
    const next = new Promise<number>((resolve, reject) => {
      queueMicrotask(() => {
        this.#next = undefined;
        this.sent++;
        this.#send().then(resolve, reject);
      });
    });
    this.#next = next;
    return next;
  }
}
