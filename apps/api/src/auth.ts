import { type Authenticate, HttpError } from '@ballast/app-shared';

/** Who is calling, as a simple authentication hook decides. */
export type AuthResult = { tenant: string } | { reject: { status: 401 | 403 | 429; message: string } };

/**
 * The authentication middleware for a hook that looks at the request alone: `{ tenant }`
 * lets the request in as that tenant (`c.var.tenant`), `{ reject }` answers it with that
 * status and `ERR_BALLAST_AUTH`, before anything else is read.
 *
 * @example
 * ```ts
 * createApi({ queue, authenticate: authenticateWith((req) => (req.headers.get('x-api-key') === key ? { tenant: 'acme' } : { reject: { status: 401, message: 'unknown API key' } })) });
 * ```
 */
export function authenticateWith(hook: (request: Request) => AuthResult | Promise<AuthResult>): Authenticate {
  return async function authenticate(c, next) {
    const result = await hook(c.req.raw);
    if ('reject' in result) throw new HttpError(result.reject.status, 'ERR_BALLAST_AUTH', result.reject.message);
    c.set('tenant', result.tenant);
    await next();
  };
}
