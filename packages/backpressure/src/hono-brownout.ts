/**
 * Hono middleware exposing a {@link BrownoutController} on the request context (exported
 * from `@ballast/backpressure/hono`).
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { BrownoutController } from './brownout.ts';

/**
 * What handlers see of the controller as `c.var.dimmer` (a {@link BrownoutController}
 * is one). An interface of plain members rather than the class: a program that loads this
 * module's ESM and CommonJS type declarations side by side gets two copies of this
 * augmentation, and TypeScript accepts them only when the types agree structurally — two
 * copies of a class with private fields never do.
 */
export interface BrownoutDimmer {
  /** The dimmer θ: the share of optional work to serve now, 0–1 (1: everything, full quality). */
  readonly level: number;
  /** Serve this request's optional work? True with probability θ. */
  shouldServeOptional(): boolean;
  /** Records one measurement of the controlled latency (a response time, a queue wait), ms. */
  record(latencyMs: number): void;
}

declare module 'hono' {
  interface ContextVariableMap {
    /** The brownout controller, set by {@link brownout}: `c.get('dimmer').level`, `c.get('dimmer').shouldServeOptional()`. */
    dimmer: BrownoutDimmer;
  }
}

/** Options of {@link brownout}. */
export interface BrownoutMiddlewareOptions {
  /** The controller, shared by every request. */
  controller: BrownoutController;
  /**
   * Which answers are samples of the controlled latency (their time from this middleware
   * to the end of the handler). `false` records nothing (feed the controller yourself,
   * e.g. with a queue wait).
   * @default every answer except 4xx (a client's mistake says nothing about load)
   */
  record?: false | ((c: Context) => boolean);
  /** A response header carrying θ at the start of the request, for clients and logs; `false` for none. @default false */
  header?: string | false;
}

const defaultRecord = (c: Context): boolean => c.res.status < 400 || c.res.status >= 500;

/**
 * Sets `c.var.dimmer` (the controller) for the handlers after it, and records each
 * answered request's latency as a sample of the controlled variable. Optional work in a
 * handler runs with the dimmer's probability (`c.var.dimmer.shouldServeOptional()`) or at
 * its level (`c.var.dimmer.level`).
 *
 * @example
 * ```ts
 * const dimmer = new BrownoutController({ setpointMs: 300 });
 * app.use('/v1/*', brownout({ controller: dimmer }));
 * app.get('/v1/product/:id', async (c) =>
 *   c.json(await product(c.req.param('id'), { recommendations: c.var.dimmer.shouldServeOptional() })),
 * );
 * ```
 */
export const brownout = (options: BrownoutMiddlewareOptions): MiddlewareHandler => {
  const { controller } = options;
  const record = options.record === undefined ? defaultRecord : options.record;
  const header = options.header ?? false;
  return async function brownout(c, next) {
    c.set('dimmer', controller);
    const level = controller.level;
    const started = controller.clock.now();
    await next();
    if (record !== false && record(c)) controller.record(controller.clock.now() - started);
    if (header !== false) c.res.headers.set(header, level.toFixed(3));
  };
};
