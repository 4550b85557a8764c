/**
 * The few parts of HTTP/1.1 (RFC 9112) a pass-through proxy needs, strict where a lenient
 * reading lets two parsers disagree about where a message ends (request smuggling): a
 * request head, a response head, and chunked framing found without changing a byte.
 */

/** A message the proxy refuses: answered with `status` and the connection closed. */
export class HeadError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'HeadError';
    this.status = status;
  }
}

/** Header fields as parsed: lower-case names, repeated fields as arrays; no prototype. */
export type HeaderFields = Record<string, string | string[]>;

/** A request head that passed every check. */
export interface RequestHead {
  readonly method: string;
  /** The origin-form target, `/path?query`. */
  readonly target: string;
  /** Every field, parsed on first use. */
  readonly headers: HeaderFields;
  /** The `Host` field. */
  readonly host: string;
  /**
   * The field lines to forward from a peer that is not a trusted proxy (as received, each
   * ending in CRLF): all but `Host`, `Expect`, hop-by-hop fields and forwarding
   * fields. `undefined` when `Connection` nominates other fields: use `headers` then.
   */
  readonly forwardLines: string | undefined;
  /** Body length from `Content-Length`; -1 when the body is chunked; 0 when there is none. */
  readonly contentLength: number;
  /** The client asked to close the connection after this exchange. */
  readonly close: boolean;
  /** `Expect: 100-continue`. */
  readonly expectContinue: boolean;
}

/** A response head, reduced to what a pass-through proxy needs. */
export interface ResponseHead {
  readonly status: number;
  /** The head to send on: status line and end-to-end fields, each line ending in CRLF, no blank line. */
  readonly head: string;
  /** Body length; -1 chunked; -2 until the connection closes. */
  readonly contentLength: number;
  /** The upstream will close the connection after this response. */
  readonly close: boolean;
  /** The value of the load header, when asked for and present. */
  readonly load: string | undefined;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values: visible ASCII, obs-text, SP and HTAB; no CR, LF, NUL or other controls. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/** Request targets: visible ASCII only. */
const BAD_TARGET = /[^\x21-\x7e]/;
const DIGITS = /^\d{1,15}$/;
const STATUS_LINE = /^HTTP\/1\.[01] [1-9]\d\d( |$)/;
const CRLF = '\r\n';

/** Fields the proxy acts on; a response reads only the hop-by-hop and framing ones, the others are Other there. */
const Field = { Other: 0, HopByHop: 1, Forwarding: 2, Host: 3, TransferEncoding: 4, ContentLength: 5, Expect: 6, Connection: 7 } as const;

/** What `name` (lower case) is to the proxy: hop-by-hop as in `HOP_BY_HOP_HEADERS`, forwarding as in `FORWARDING_HEADERS`. */
function fieldKind(name: string): number {
  switch (name) {
    case 'host':
      return Field.Host;
    case 'content-length':
      return Field.ContentLength;
    case 'transfer-encoding':
      return Field.TransferEncoding;
    case 'expect':
      return Field.Expect;
    case 'connection':
      return Field.Connection;
    case 'keep-alive':
    case 'proxy-connection':
    case 'proxy-authenticate':
    case 'proxy-authorization':
    case 'te':
    case 'trailer':
    case 'upgrade':
      return Field.HopByHop;
    case 'forwarded':
    case 'x-forwarded-for':
    case 'x-forwarded-host':
    case 'x-forwarded-proto':
    case 'x-real-ip':
      return Field.Forwarding;
    default:
      return Field.Other;
  }
}

/** A request head that passed every check; its field record is built only when asked for. */
class ParsedRequest implements RequestHead {
  readonly method: string;
  readonly target: string;
  readonly host: string;
  readonly forwardLines: string | undefined;
  readonly contentLength: number;
  readonly close: boolean;
  readonly expectContinue: boolean;
  readonly #text: string;
  readonly #fieldsFrom: number;
  #headers: HeaderFields | undefined;

  constructor(head: Omit<RequestHead, 'headers'>, text: string, fieldsFrom: number) {
    this.method = head.method;
    this.target = head.target;
    this.host = head.host;
    this.forwardLines = head.forwardLines;
    this.contentLength = head.contentLength;
    this.close = head.close;
    this.expectContinue = head.expectContinue;
    this.#text = text;
    this.#fieldsFrom = fieldsFrom;
  }

  get headers(): HeaderFields {
    this.#headers ??= parseFields(this.#text, this.#fieldsFrom, 400);
    return this.#headers;
  }
}

/**
 * Parses the request head in `text` (latin1, from the request line to the last field,
 * without the blank line). Refuses, with the status to answer: a malformed request line,
 * a target that is not a path (absolute-form, authority-form, `*`), a version other than
 * HTTP/1.1, a line not ended by CRLF, obs-fold, whitespace before a colon, control
 * characters, a missing or repeated `Host`, `Content-Length` that is not one decimal
 * number, `Transfer-Encoding` other than `chunked` alone, and both framing headers at once.
 * One pass over the fields: the lines to forward are collected as it goes, and a record of
 * the fields is built only when `headers` is read.
 *
 * @throws {HeadError}
 */
export function parseRequestHead(text: string): RequestHead {
  const lineEnd = endOfLine(text, 0, 400);
  const line = text.slice(0, lineEnd);
  const sp1 = line.indexOf(' ');
  const sp2 = line.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 === -1 || line.indexOf(' ', sp2 + 1) !== -1) throw new HeadError(400, 'malformed request line');
  const method = line.slice(0, sp1);
  const target = line.slice(sp1 + 1, sp2);
  const version = line.slice(sp2 + 1);
  if (!TOKEN.test(method)) throw new HeadError(400, 'malformed method');
  if (version !== 'HTTP/1.1') {
    throw /^HTTP\/\d\.\d$/.test(version)
      ? new HeadError(505, `${version} is not served: send HTTP/1.1`)
      : new HeadError(400, 'malformed HTTP version');
  }
  if (target.charCodeAt(0) !== 47 /* '/' */ || target.length === 0) {
    throw new HeadError(400, 'the request target must be a path (origin-form): absolute-form, authority-form and * are refused');
  }
  if (BAD_TARGET.test(target)) throw new HeadError(400, 'the request target holds characters outside visible ASCII');
  if (CONTROL.test(text)) throw new HeadError(400, 'control characters in the request head');
  const lower = text.toLowerCase();
  let host: string | undefined;
  let te: string | undefined;
  let cl: string[] | undefined;
  let expect: string | undefined;
  let connection: string | undefined;
  let forwardLines = '';
  /** Where the current run of lines to forward started: runs are copied whole, as received. */
  let run = lineEnd + 2;
  for (let start = lineEnd + 2; start < text.length; ) {
    const end = endOfLine(text, start, 400);
    const colon = fieldColon(text, start, end, 400);
    const name = lower.slice(start, colon);
    if (!TOKEN.test(name))
      throw new HeadError(400, `malformed field name ${JSON.stringify(text.slice(start, Math.min(colon, start + 64)))}`);
    const field = fieldKind(name);
    if (field !== Field.Other && field !== Field.ContentLength) {
      if (start > run) forwardLines += text.slice(run, start);
      run = end + 2;
    }
    if (field > Field.Forwarding) {
      const value = trimOws(text.slice(colon + 1, end));
      if (field === Field.Host) {
        if (host !== undefined) throw new HeadError(400, 'Host is repeated');
        host = value;
      } else if (field === Field.TransferEncoding) {
        if (te !== undefined) throw new HeadError(400, 'Transfer-Encoding other than "chunked" alone');
        te = value;
      } else if (field === Field.ContentLength) {
        (cl ??= []).push(value);
      } else if (field === Field.Expect) {
        if (expect !== undefined) throw new HeadError(417, 'only Expect: 100-continue is understood');
        expect = value;
      } else {
        connection = connection === undefined ? value : `${connection},${value}`;
      }
    }
    start = end + 2;
  }
  if (run < text.length) forwardLines += `${text.slice(run)}${CRLF}`;
  if (host === undefined) throw new HeadError(400, 'Host is missing');
  let contentLength = 0;
  if (te !== undefined) {
    if (cl !== undefined) throw new HeadError(400, 'both Transfer-Encoding and Content-Length');
    if (te.toLowerCase() !== 'chunked') throw new HeadError(400, 'Transfer-Encoding other than "chunked" alone');
    contentLength = -1;
  } else if (cl !== undefined) {
    contentLength = contentLengthOf(cl, 400);
  }
  if (expect !== undefined && expect.toLowerCase() !== '100-continue') throw new HeadError(417, 'only Expect: 100-continue is understood');
  let close = false;
  let nominates = false;
  if (connection !== undefined) {
    const options = connectionTokens(connection);
    close = options.has('close');
    nominates = options.size > (close ? 1 : 0) + (options.has('keep-alive') ? 1 : 0);
  }
  return new ParsedRequest(
    {
      method,
      target,
      host,
      forwardLines: nominates ? undefined : forwardLines,
      contentLength,
      close,
      expectContinue: expect !== undefined,
    },
    text,
    lineEnd,
  );
}

/** Control characters other than CR and LF, anywhere in a head (CR and LF are checked line by line). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** Where the line from `start` ends: its CR (followed by LF), or the end of `text`; a bare CR or LF is refused. */
function endOfLine(text: string, start: number, status: number): number {
  const lf = text.indexOf('\n', start);
  const cr = text.indexOf('\r', start);
  if (lf === -1) {
    if (cr !== -1) throw new HeadError(status, 'a bare CR in a line');
    return text.length;
  }
  if (cr !== lf - 1) throw new HeadError(status, cr === -1 || cr > lf ? 'a line ended by a bare LF' : 'a bare CR in a line');
  return cr;
}

/** The colon of the field line `start`–`end`, refusing obs-fold and a line without a name. */
function fieldColon(text: string, start: number, end: number, status: number): number {
  const c = text.charCodeAt(start);
  if (c === 32 || c === 9) throw new HeadError(status, 'obs-fold (a field line starting with whitespace) is refused');
  const colon = text.indexOf(':', start);
  if (colon === -1 || colon >= end || colon === start) throw new HeadError(status, 'malformed field line');
  return colon;
}

/**
 * Parses a response head (`text` as in {@link parseRequestHead}) into the head to send on:
 * hop-by-hop fields and those `Connection` names dropped, except `Transfer-Encoding`,
 * which stays because the body is passed on as it came; the other lines as received, in
 * their order, the framing fields under lower-case names. `bodyless` is true for an answer to HEAD. Refuses (502) what it cannot
 * frame unambiguously. One pass over the fields, no record of them built.
 *
 * @throws {HeadError}
 */
export function parseResponseHead(text: string, bodyless: boolean, loadHeader: string | false): ResponseHead {
  const lineEnd = endOfLine(text, 0, 502);
  const line = text.slice(0, lineEnd);
  if (!STATUS_LINE.test(line) || BAD_VALUE.test(line)) throw new HeadError(502, 'malformed status line from the upstream');
  const status = Number(line.slice(9, 12));
  if (CONTROL.test(text)) throw new HeadError(502, 'control characters in the upstream response head');
  const lower = text.toLowerCase();
  const loadLength = loadHeader === false ? -1 : loadHeader.length;
  let head = `HTTP/1.1 ${line.slice(9)}${CRLF}`;
  let te: string | undefined;
  let cl: string[] | undefined;
  let connection: string | undefined;
  let load: string | undefined;
  let start = lineEnd + 2;
  /** Where the current run of lines passed on as received started (copied whole). */
  let run = start;
  while (start < text.length) {
    const end = endOfLine(text, start, 502);
    const colon = fieldColon(text, start, end, 502);
    const name = lower.slice(start, colon);
    if (!TOKEN.test(name))
      throw new HeadError(502, `malformed field name ${JSON.stringify(text.slice(start, Math.min(colon, start + 64)))}`);
    const kind = fieldKind(name);
    const field = kind === Field.Host || kind === Field.Expect || kind === Field.Forwarding ? Field.Other : kind;
    if (field !== Field.Other) {
      if (start > run) head += text.slice(run, start);
      run = end + 2;
      // The framing fields are passed on too, under a lower-case name.
      if (field === Field.TransferEncoding || field === Field.ContentLength) head += `${name}${text.slice(colon, end)}${CRLF}`;
    }
    if (field !== Field.Other && field !== Field.HopByHop) {
      const value = trimOws(text.slice(colon + 1, end));
      if (field === Field.TransferEncoding) te = te === undefined ? value : `${te},${value}`;
      else if (field === Field.ContentLength) (cl ??= []).push(value);
      else connection = connection === undefined ? value : `${connection},${value}`;
    } else if (name.length === loadLength && load === undefined && name === loadHeader) {
      load = trimOws(text.slice(colon + 1, end));
    }
    start = end + 2;
  }
  if (run < text.length) head += `${text.slice(run)}${CRLF}`;
  let close = false;
  if (connection !== undefined) {
    const options = connectionTokens(connection);
    close = options.has('close');
    if (options.size > (close ? 1 : 0) + (options.has('keep-alive') ? 1 : 0)) head = withoutFields(head, options);
  }
  let contentLength: number;
  if (bodyless || status < 200 || status === 204 || status === 304) {
    contentLength = 0;
  } else if (te !== undefined) {
    const last = te
      .slice(te.lastIndexOf(',') + 1)
      .trim()
      .toLowerCase();
    contentLength = last === 'chunked' ? -1 : -2;
    // A message with both framing headers: Transfer-Encoding wins, and the connection is not reused.
    if (cl !== undefined) close = true;
  } else if (cl !== undefined) {
    contentLength = contentLengthOf(cl, 502);
  } else {
    contentLength = -2;
  }
  if (contentLength === -2) close = true;
  return { status, head, contentLength, close, load };
}

/** `head` (status line and field lines) without the fields named in `names` (lower case). */
function withoutFields(head: string, names: ReadonlySet<string>): string {
  let out = '';
  for (const fieldLine of head.split(CRLF)) {
    if (fieldLine === '') continue;
    const colon = fieldLine.indexOf(':');
    if (out !== '' && names.has(fieldLine.slice(0, colon).toLowerCase())) continue;
    out += `${fieldLine}${CRLF}`;
  }
  return out;
}

/** The fields after the start line, into a prototype-free record. */
function parseFields(text: string, from: number, status: number): HeaderFields {
  const headers: HeaderFields = Object.create(null) as HeaderFields;
  let start = from + 2;
  while (start < text.length) {
    let end = text.indexOf(CRLF, start);
    if (end === -1) end = text.length;
    const c = text.charCodeAt(start);
    if (c === 32 || c === 9) throw new HeadError(status, 'obs-fold (a field line starting with whitespace) is refused');
    const colon = text.indexOf(':', start);
    if (colon === -1 || colon >= end || colon === start) throw new HeadError(status, 'malformed field line');
    const name = text.slice(start, colon);
    if (!TOKEN.test(name)) throw new HeadError(status, `malformed field name ${JSON.stringify(name.slice(0, 64))}`);
    const value = trimOws(text.slice(colon + 1, end));
    if (BAD_VALUE.test(value)) throw new HeadError(status, `control characters in field ${name.slice(0, 64)}`);
    const key = name.toLowerCase();
    const prior = headers[key];
    if (prior === undefined) headers[key] = value;
    else if (typeof prior === 'string') headers[key] = [prior, value];
    else prior.push(value);
    start = end + 2;
  }
  return headers;
}

function trimOws(value: string): string {
  let a = 0;
  let b = value.length;
  while (a < b && (value.charCodeAt(a) === 32 || value.charCodeAt(a) === 9)) a++;
  while (b > a && (value.charCodeAt(b - 1) === 32 || value.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === value.length ? value : value.slice(a, b);
}

/** One decimal length, however often repeated (`5`, `5, 5`); anything else refused. */
function contentLengthOf(value: string | string[], status: number): number {
  // The usual case: one field, one number.
  if (typeof value === 'string' ? DIGITS.test(value) : value.length === 1 && DIGITS.test(value[0]!)) {
    return Number(typeof value === 'string' ? value : value[0]);
  }
  let length = -1;
  for (const part of typeof value === 'string' ? [value] : value) {
    for (const item of part.split(',')) {
      const digits = item.trim();
      if (!DIGITS.test(digits)) throw new HeadError(status, `Content-Length ${JSON.stringify(part.slice(0, 32))} is not a length`);
      const n = Number(digits);
      if (length !== -1 && n !== length) throw new HeadError(status, 'conflicting Content-Length values');
      length = n;
    }
  }
  return length;
}

const KEEP_ALIVE: ReadonlySet<string> = new Set(['keep-alive']);
const CLOSE: ReadonlySet<string> = new Set(['close']);

/** The options a `Connection` value names (lower case, framing fields left out); the usual values answered without parsing. */
function connectionTokens(value: string): ReadonlySet<string> {
  if (value.length === 10 && value.toLowerCase() === 'keep-alive') return KEEP_ALIVE;
  if (value.length === 5 && value.toLowerCase() === 'close') return CLOSE;
  return tokens(value);
}

function tokens(value: string | string[]): Set<string> {
  const set = new Set<string>();
  for (const part of typeof value === 'string' ? [value] : value) {
    for (const token of part.split(',')) {
      const name = token.trim().toLowerCase();
      // `Connection` may not nominate the field that frames the body.
      if (name !== '' && name !== 'content-length' && name !== 'transfer-encoding') set.add(name);
    }
  }
  return set;
}

// Chunked framing --------------------------------------------------------------------

const SIZE = 0;
const SIZE_DIGITS = 1;
const EXTENSION = 2;
const SIZE_LF = 3;
const DATA = 4;
const DATA_CR = 5;
const DATA_LF = 6;
const TRAILER_START = 7;
const TRAILER = 8;
const TRAILER_LF = 9;
const END_LF = 10;
/** 2^52: 13 hex digits. */
const MAX_SIZE_DIGITS = 13;

/**
 * Finds where a chunked body (RFC 9112 §7.1) ends, byte by byte, without changing it:
 * the proxy sends the bytes on as they came and needs only to know where the next
 * message starts. Strict: hex sizes without whitespace, CRLF (never a bare LF) after
 * every line, chunk data followed by CRLF, bounded extensions and trailer section.
 */
export class ChunkedFraming {
  #state = SIZE;
  #remaining = 0;
  #digits = 0;
  #lineBytes = 0;
  readonly #maxLineBytes: number;

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
  }

  /**
   * Reads `buf` from `start`; returns the index just past the end of the body, or -1
   * when the body goes on past `buf`.
   * @throws {HeadError} (400) on malformed framing.
   */
  scan(buf: Buffer, start: number): number {
    let i = start;
    const n = buf.length;
    while (i < n) {
      switch (this.#state) {
        case SIZE:
        case SIZE_DIGITS: {
          const c = buf[i]!;
          const d = hexValue(c);
          if (d !== -1) {
            if (++this.#digits > MAX_SIZE_DIGITS) throw new HeadError(400, 'chunk size too large');
            this.#remaining = this.#remaining * 16 + d;
            this.#state = SIZE_DIGITS;
          } else if (this.#state === SIZE) {
            throw new HeadError(400, 'malformed chunk size');
          } else if (c === 59 /* ; */) {
            this.#state = EXTENSION;
            this.#lineBytes = 0;
          } else if (c === 13) {
            this.#state = SIZE_LF;
          } else {
            throw new HeadError(400, 'malformed chunk size');
          }
          i++;
          break;
        }
        case EXTENSION: {
          const c = buf[i]!;
          if (c === 13) this.#state = SIZE_LF;
          else if ((c < 32 && c !== 9) || c === 127) throw new HeadError(400, 'control characters in a chunk extension');
          else if (++this.#lineBytes > this.#maxLineBytes) throw new HeadError(400, 'chunk extension too long');
          i++;
          break;
        }
        case SIZE_LF:
          if (buf[i] !== 10) throw new HeadError(400, 'chunk size line not ended by CRLF');
          i++;
          this.#digits = 0;
          if (this.#remaining === 0) {
            this.#state = TRAILER_START;
            this.#lineBytes = 0;
          } else {
            this.#state = DATA;
          }
          break;
        case DATA: {
          const take = Math.min(this.#remaining, n - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = DATA_CR;
          break;
        }
        case DATA_CR:
          if (buf[i] !== 13) throw new HeadError(400, 'chunk data not followed by CRLF');
          this.#state = DATA_LF;
          i++;
          break;
        case DATA_LF:
          if (buf[i] !== 10) throw new HeadError(400, 'chunk data not followed by CRLF');
          this.#state = SIZE;
          i++;
          break;
        case TRAILER_START: {
          const c = buf[i]!;
          if (c === 13) this.#state = END_LF;
          else if (c === 32 || c === 9) throw new HeadError(400, 'obs-fold in the trailer section');
          else this.#state = TRAILER;
          if (c !== 13 && ++this.#lineBytes > this.#maxLineBytes) throw new HeadError(400, 'trailer section too long');
          i++;
          break;
        }
        case TRAILER: {
          const c = buf[i]!;
          if (c === 13) this.#state = TRAILER_LF;
          else if ((c < 32 && c !== 9) || c === 127) throw new HeadError(400, 'control characters in the trailer section');
          else if (++this.#lineBytes > this.#maxLineBytes) throw new HeadError(400, 'trailer section too long');
          i++;
          break;
        }
        case TRAILER_LF:
          if (buf[i] !== 10) throw new HeadError(400, 'trailer line not ended by CRLF');
          this.#state = TRAILER_START;
          i++;
          break;
        case END_LF:
          if (buf[i] !== 10) throw new HeadError(400, 'chunked body not ended by CRLF');
          this.#state = SIZE;
          this.#remaining = 0;
          this.#digits = 0;
          return i + 1;
      }
    }
    return -1;
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}
