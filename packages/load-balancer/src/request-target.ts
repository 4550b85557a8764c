/**
 * Request targets a reverse proxy accepts. A client talking to a forward proxy sends the
 * absolute form (`GET http://evil.example/ HTTP/1.1`); a reverse proxy is no forward proxy,
 * and passing such a request on would forward the client's chosen host as `X-Forwarded-Host`.
 */

/**
 * The `Host` header when the absolute-form target `url` names another host, else
 * `undefined` (also when there is no `Host` to compare with: HTTP/2, `app.request()`).
 * Default ports and case are normalized before comparing.
 */
export function foreignHost(url: URL, host: string | null | undefined): string | undefined {
  if (host === null || host === undefined) return undefined;
  let named: string;
  try {
    named = new URL(`${url.protocol}//${host}`).host;
  } catch {
    return host;
  }
  return named === url.host ? undefined : host;
}

/** The message of the 400 answer to an absolute-form target naming another host. */
export function foreignHostMessage(url: URL, host: string): string {
  return `the request target names host ${url.host}, not ${host} (Host)`;
}
