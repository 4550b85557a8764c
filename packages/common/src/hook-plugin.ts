/**
 * A Fastify plugin made of one `onRequest` hook, for the Fastify adapters of the Ballast
 * packages. Typed structurally, so this package needs no Fastify types.
 */

/** The part of a Fastify instance {@link hookPlugin} uses. */
export interface HookHost {
  addHook(name: 'onRequest', hook: never): unknown;
}

/** A plugin function, as `fastify.register()` takes it, carrying its hook as `.onRequest`. */
export type HookPlugin<H> = ((instance: HookHost, options: unknown, done: (error?: Error) => void) => void) & { readonly onRequest: H };

/**
 * A plugin that adds `hook` as an `onRequest` hook to the context registering it, and to
 * the contexts that context encapsulates: it sets Fastify's `skip-override` (as
 * fastify-plugin does), so the hook is not shut inside a context of its own, and never
 * reaches sibling or parent contexts. The plugin is named `<owner> <hook name>` (Fastify's
 * `hasPlugin()`, its error messages) and declares Fastify 5.
 *
 * @example
 * ```ts
 * const plugin = hookPlugin('@ballast/backpressure', async function rateLimit(request, reply) {...});
 * await app.register(plugin);                               // every route of app
 * app.get('/one', { onRequest: plugin.onRequest }, handler); // one route
 * ```
 */
export function hookPlugin<H extends (...args: never[]) => unknown>(owner: string, hook: H): HookPlugin<H> {
  const name = `${owner} ${hook.name}`;
  const register = (instance: HookHost, _options: unknown, done: (error?: Error) => void): void => {
    instance.addHook('onRequest', hook as never);
    done();
  };
  Object.defineProperty(register, 'name', { value: hook.name });
  return Object.assign(register, {
    onRequest: hook,
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: name,
    [Symbol.for('plugin-meta')]: { fastify: '5.x', name },
  });
}
