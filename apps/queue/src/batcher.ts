/**
 * Sends many calls as one: items submitted while a batch is under way (or in the same
 * tick) go out together in the next one, up to `maxBatch`. With one batch in flight at
 * a time, a busy process makes one script call for every job that arrived during the
 * previous call's round trip; an idle one sends each item at once.
 */
export class Batcher<I, O> {
  readonly #send: (items: I[]) => Promise<O[]>;
  readonly #maxBatch: number;
  #queue: Array<{ item: I; resolve: (value: O) => void; reject: (error: unknown) => void }> = [];
  #busy = false;
  #scheduled = false;
  /** Calls sent so far. */
  batches = 0;

  /** @param send sends a batch and resolves with one result per item, in order. */
  constructor(send: (items: I[]) => Promise<O[]>, maxBatch = 64) {
    this.#send = send;
    this.#maxBatch = maxBatch;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#busy && !this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#busy || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#maxBatch);
    this.#busy = true;
    this.batches++;
    this.#send(batch.map((b) => b.item)).then(
      (results) => {
        if (results.length === batch.length) {
          for (const [i, result] of results.entries()) batch[i]?.resolve(result);
        } else {
          const error = new Error(`Batcher: send answered ${results.length} results for ${batch.length} items`);
          for (const b of batch) b.reject(error);
        }
        this.#next();
      },
      (error) => {
        for (const b of batch) b.reject(error);
        this.#next();
      },
    );
  }

  #next(): void {
    this.#busy = false;
    if (this.#queue.length === 0 || this.#scheduled) return;
    // After the rest of this turn of the event loop: the replies that came with this one
    // (other connections, other batches) submit their items first, and go in this batch.
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }
}
