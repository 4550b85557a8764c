/** What a promise settled with, as a value a test can inspect without try/catch. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Resolves with how `promise` settled. */
export function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

/** The rejection of a settled call (undefined when it resolved). */
export function errorOf<E = unknown>(settled: Settled<unknown>): E {
  return (settled.ok ? undefined : settled.error) as E;
}

/** A port on 127.0.0.1 where nothing listens (connections are refused). */
export async function refusedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
