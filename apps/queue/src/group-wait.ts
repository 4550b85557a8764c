/**
 * Group commit for `WAIT`: a `WAIT` on a connection vouches for every write made on
 * that connection before it, so concurrent jobs share one. A caller whose write has
 * completed joins the next `WAIT` not yet sent (one already in flight may have been
 * sent before the write, so it cannot vouch for it); that one is sent as soon as the
 * one in flight returns. Under load, one `WAIT` covers every job written during the
 * previous one's round trip.
 */
export class GroupWait {
  readonly #send: () => Promise<number>;
  #sending: Promise<number> | undefined;
  #queued: Promise<number> | undefined;
  /** `WAIT` commands sent so far. */
  sent = 0;

  /** @param send sends one `WAIT` and resolves with the number of replicas that confirmed. */
  constructor(send: () => Promise<number>) {
    this.#send = send;
  }

  /** Resolves with the replicas that hold every write completed before this call. */
  wait(): Promise<number> {
    if (this.#queued) return this.#queued;
    if (!this.#sending) return this.#start();
    const queued = this.#sending.then(noop, noop).then(() => {
      this.#queued = undefined;
      return this.#start();
    });
    this.#queued = queued;
    return queued;
  }

  #start(): Promise<number> {
    this.sent++;
    const sending = this.#send();
    this.#sending = sending;
    const clear = (): void => {
      if (this.#sending === sending) this.#sending = undefined;
    };
    sending.then(clear, clear);
    return sending;
  }
}

function noop(): void {}
