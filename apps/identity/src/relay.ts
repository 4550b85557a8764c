import { durationMs } from '@ballast/common';
import type { ChangeSink } from './feed.ts';
import type { IdentityStore } from './store.ts';

/** Options of {@link ChangeRelay}. */
export interface ChangeRelayOptions {
  /** How often the relay looks for changes the feed is missing (after a Redis outage, or another writer's), ms. @default 1000 */
  intervalMs?: number;
  /** Changes read from the store per batch. @default 500 */
  batchSize?: number;
}

/**
 * Moves committed changes from the store's log to the feed, in version order: the
 * transactional-outbox pattern. The management plane calls {@link ChangeRelay.flush}
 * after each change before it answers, and a timer catches up whatever a failed flush
 * (Redis down) left behind. Idempotent: the feed skips versions it has.
 */
export class ChangeRelay implements AsyncDisposable {
  readonly #store: IdentityStore;
  readonly #sink: ChangeSink;
  readonly #batchSize: number;
  readonly #timer: NodeJS.Timeout;
  #running: Promise<number> | undefined;
  #next: Promise<number> | undefined;
  #published = 0;
  #failures = 0;
  #lastError: unknown;

  constructor(store: IdentityStore, sink: ChangeSink, options: ChangeRelayOptions = {}) {
    this.#store = store;
    this.#sink = sink;
    this.#batchSize = options.batchSize ?? 500;
    this.#timer = setInterval(() => this.flush().catch(() => {}), durationMs('intervalMs', options.intervalMs ?? 1000, { min: 1 }));
    this.#timer.unref();
  }

  /**
   * Publishes every committed change the feed lacks; resolves with the feed's version.
   * Calls made while a flush runs share the next one, so a change committed just before
   * the call is always included.
   */
  flush(): Promise<number> {
    if (this.#running) {
      this.#next ??= this.#running
        .catch(() => {})
        .then(() => {
          this.#next = undefined;
          return this.flush();
        });
      return this.#next;
    }
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Changes published by this relay, and failed flushes. */
  stats(): { published: number; failures: number; lastError?: string } {
    return {
      published: this.#published,
      failures: this.#failures,
      ...(this.#lastError !== undefined && { lastError: String(this.#lastError) }),
    };
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running?.catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #drain(): Promise<number> {
    try {
      let version = await this.#sink.publishedVersion();
      for (;;) {
        const changes = await this.#store.changesSince(version, this.#batchSize);
        if (changes.length === 0) break;
        await this.#sink.publish(changes);
        this.#published += changes.length;
        version = (changes.at(-1) as { version: number }).version;
      }
      this.#lastError = undefined;
      return version;
    } catch (error) {
      this.#failures++;
      this.#lastError = error;
      throw error;
    }
  }
}
