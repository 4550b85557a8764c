import { checkKey } from './key.ts';

/** Codes of an authentication refusal. */
export type AuthErrorCode =
  | 'ERR_BALLAST_AUTH_MISSING'
  | 'ERR_BALLAST_AUTH_MALFORMED'
  | 'ERR_BALLAST_AUTH_UNKNOWN_KEY'
  | 'ERR_BALLAST_AUTH_REVOKED'
  | 'ERR_BALLAST_IDENTITY_UNAVAILABLE';

/** A refusal: the HTTP status, a stable code and a message that names the problem and never contains the key. */
export interface AuthRefusal {
  readonly ok: false;
  readonly status: 401 | 403 | 503;
  readonly code: AuthErrorCode;
  readonly message: string;
}

/** The longest `Authorization` value looked at; longer ones are refused unread. */
export const MAX_AUTHORIZATION_LENGTH = 1024;

const refusal = (status: AuthRefusal['status'], code: AuthErrorCode, message: string): AuthRefusal =>
  Object.freeze({ ok: false, status, code, message });

const HINT = 'send the header Authorization: Bearer <API key>';
/** Refusals that need no lookup, built once. */
export const REFUSALS: Readonly<Record<'missing' | 'tooLong' | 'several' | 'scheme' | 'unknown' | 'revoked' | 'unavailable', AuthRefusal>> =
  {
    missing: refusal(401, 'ERR_BALLAST_AUTH_MISSING', `authentication required: ${HINT}`),
    tooLong: refusal(401, 'ERR_BALLAST_AUTH_MALFORMED', `the Authorization header is over ${MAX_AUTHORIZATION_LENGTH} characters; ${HINT}`),
    several: refusal(401, 'ERR_BALLAST_AUTH_MALFORMED', `the request carries more than one Authorization value; ${HINT}, once`),
    scheme: refusal(401, 'ERR_BALLAST_AUTH_MALFORMED', `the Authorization header is not a Bearer token; ${HINT}`),
    unknown: refusal(
      401,
      'ERR_BALLAST_AUTH_UNKNOWN_KEY',
      'the API key is not known (never issued, or not yet visible here: a new key works within seconds)',
    ),
    revoked: refusal(403, 'ERR_BALLAST_AUTH_REVOKED', 'the API key has been revoked'),
    unavailable: refusal(
      503,
      'ERR_BALLAST_IDENTITY_UNAVAILABLE',
      'the key cannot be verified right now (identity data unreachable); retry shortly',
    ),
  };

const KEY_REFUSALS = new Map<string, AuthRefusal>();

/** The key in an `Authorization: Bearer <key>` value, or the refusal that says what is wrong with it. No lookup, no allocation on refusal. */
export function parseAuthorization(value: string | null | undefined): { readonly ok: true; readonly key: string } | AuthRefusal {
  if (value === undefined || value === null || value === '') return REFUSALS.missing;
  if (value.length > MAX_AUTHORIZATION_LENGTH) return REFUSALS.tooLong;
  // A web Request joins repeated headers with ", ": two values are never one key.
  if (value.includes(',')) return REFUSALS.several;
  const space = value.indexOf(' ');
  if (space < 0 || value.slice(0, space).toLowerCase() !== 'bearer') return REFUSALS.scheme;
  const key = value.slice(space + 1).trim();
  const check = checkKey(key);
  if (check.ok) return { ok: true, key };
  let refused = KEY_REFUSALS.get(check.problem);
  if (!refused) {
    refused = refusal(401, 'ERR_BALLAST_AUTH_MALFORMED', `${check.message}; ${HINT}`);
    KEY_REFUSALS.set(check.problem, refused);
  }
  return refused;
}
