/**
 * Secret values must never reach a log line, an error, a ledger item or a DLQ attribute.
 * Two layers: (1) code never puts them there (messages are built from field names), and
 * (2) every value the process learns to be secret — the master token, user tokens, imported
 * credentials — is registered here, and everything bound for logs, the ledger or the DLQ is
 * scrubbed of them. Layer 2 catches what layer 1 misses (e.g. an upstream error echoing input).
 *
 * An echo is rarely the raw value: a gateway or GraphQL server quotes the request as JSON
 * (`"` → `\"`, non-ASCII → `\u00e9`), sometimes JSON inside JSON, as a query string, or as
 * base64 (Basic auth). Each registered value is therefore expanded once, at registration, into
 * every form it can take in text, and scrub() looks for all of them.
 */
const REDACTED = '[redacted]';
/**
 * Values shorter than this are not redacted: "1" or "eu" would blank out harmless text, and a
 * short value's encodings are too short to find reliably. Credential fields shorter than this
 * are refused where they are loaded (see requireRedactable) instead of being imported unprotected.
 */
export const MIN_SECRET_LENGTH = 8;
/** Keys whose values are secret whatever they contain. */
const SECRET_KEYS =
  /^(authorization|accesstoken|access_token|token|mastertoken|master_token|password|secret|secretstring|credentials|apikey|api_key|usertoken)$/i;

/**
 * Bounded, oldest forgotten first: a warm worker mints a user token per user, and the values
 * that matter are those of the records in flight. Scrubbing costs one search per variant.
 */
const MAX_KNOWN = 1_000;
/** Registered value → its encoded forms, longest first (a form may contain a shorter one). */
const known = new Map<string, readonly string[]>();
/** All variants of all values, longest first; rebuilt lazily after a registration. */
let variants: readonly string[] | undefined;

export function registerSecret(value: unknown): void {
  if (typeof value === 'string' || typeof value === 'number') {
    const text = String(value);
    if (text.length < MIN_SECRET_LENGTH) return;
    const forms = known.get(text);
    known.delete(text); // re-registering makes it the newest
    if (forms) {
      // Same set of values: the variant list scrub() uses is still valid (values are registered
      // again on every use, so this path is the common one and must stay cheap).
      known.set(text, forms);
      return;
    }
    known.set(text, encodedForms(text));
    if (known.size > MAX_KNOWN) known.delete(known.keys().next().value as string);
    variants = undefined;
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) registerSecret(v);
  }
}

export function scrub(text: string): string {
  variants ??= [...new Set([...known.values()].flat())].sort((a, b) => b.length - a.length);
  let out = text;
  for (const form of variants) if (out.includes(form)) out = out.split(form).join(REDACTED);
  return out;
}

/**
 * Upstream text (a Tray or gateway error) for a log, the ledger or the DLQ: scrubbed first — so
 * that cutting cannot split a secret and leave half of it unrecognised — then cut to what
 * explains the error, on a code-point boundary.
 */
export const MAX_UPSTREAM_TEXT = 500;
export function scrubExcerpt(text: string, maxChars = MAX_UPSTREAM_TEXT): string {
  const clean = scrub(text);
  return clean.length <= maxChars ? clean : `${truncateCodePoints(clean, maxChars - 1)}…`;
}

/**
 * The longest prefix of `text` of at most `maxUnits` UTF-16 code units that does not end inside
 * a surrogate pair: a lone surrogate is not valid Unicode, and SQS rejects attributes holding one.
 */
export function truncateCodePoints(text: string, maxUnits: number): string {
  if (text.length <= maxUnits) return text;
  let end = Math.max(0, maxUnits);
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1; // high surrogate whose pair would be cut off
  return text.slice(0, end);
}

/** Deep copy with secret values and secret-named keys replaced; for anything logged or stored. */
export function scrubValue<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, jsonScrubber)) as T;
}

/** A JSON.stringify replacer: usable as Powertools Logger's `jsonReplacerFn`. */
export function jsonScrubber(key: string, value: unknown): unknown {
  if (key && SECRET_KEYS.test(key) && value !== undefined && value !== null) return REDACTED;
  if (typeof value === 'string') return scrub(value);
  if (value instanceof Error) return { name: value.name, message: scrub(value.message), code: (value as { code?: unknown }).code };
  return value;
}

/**
 * Why a credential value cannot be protected by redaction, or undefined if it can: every string
 * or number in it (nested values of a JSON credential too) must be at least MIN_SECRET_LENGTH
 * characters. Booleans and null carry no secret. Returns the JSON path of the first short value
 * (never the value itself) so the caller can name it.
 */
export function unredactablePath(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string' || typeof value === 'number') return String(value).length < MIN_SECRET_LENGTH ? path : undefined;
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const found = unredactablePath(v, Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** For tests: forget registered values between cases. */
export function resetSecretsForTests(): void {
  known.clear();
  variants = undefined;
}

// --- encodings -------------------------------------------------------------------------------

/** JSON string escaping without the quotes: what a server quoting the value as JSON writes. */
const jsonEscape = (s: string): string => JSON.stringify(s).slice(1, -1);
/** JSON escaping with every non-ASCII code unit as \uXXXX (Python's ensure_ascii, Java, jq -a). */
const asciiJsonEscape = (s: string, upper: boolean): string =>
  jsonEscape(s).replace(/[\u0080-\uffff]/g, (c) => {
    const hex = c.charCodeAt(0).toString(16).padStart(4, '0');
    return `\\u${upper ? hex.toUpperCase() : hex}`;
  });
/** Form encoding (application/x-www-form-urlencoded): space as "+", also escapes !'()~. */
const formEncode = (s: string): string => new URLSearchParams({ v: s }).toString().slice(2);
const lowerPercentHex = (s: string): string => s.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());

/**
 * Base64 of the value wherever it sits in a longer encoded text (e.g. "user:password" in a Basic
 * header): the value can start at any of three byte offsets of a 3-byte group, and each offset
 * gives different characters. For each, keep only the characters that depend on the value's
 * bytes alone. The value encoded on its own (with padding) is included as well.
 */
function base64Forms(s: string): string[] {
  const bytes = Buffer.from(s, 'utf8');
  const forms: string[] = [bytes.toString('base64')];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    const first = Math.ceil((8 * offset) / 6);
    const end = Math.floor((8 * (offset + bytes.length)) / 6);
    forms.push(encoded.slice(first, end));
  }
  return forms.flatMap((f) => [f, f.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')]);
}

function encodedForms(s: string): string[] {
  const json = jsonEscape(s);
  const ascii = [asciiJsonEscape(s, false), asciiJsonEscape(s, true)];
  const escaped = [json, ...ascii];
  // JSON inside JSON (Tray's Json scalars are JSON strings inside the request's JSON): each
  // backslash and quote of the first level escaped again.
  const doubleEscaped = escaped.map(jsonEscape);
  // A whole request echoed as a query string or base64 carries the value as it sits in the
  // request: raw, or escaped once or twice. Identical forms collapse below, so a value without
  // quotes, backslashes or non-ASCII costs only its raw encodings.
  const transported = [...new Set([s, json, jsonEscape(json)])].flatMap((form) => [
    encodeURIComponent(form),
    lowerPercentHex(encodeURIComponent(form)),
    formEncode(form),
    lowerPercentHex(formEncode(form)),
    ...base64Forms(form),
  ]);
  const forms = [
    s,
    ...escaped,
    ...doubleEscaped,
    // Some serializers (PHP's json_encode) also escape "/".
    ...[...escaped, ...doubleEscaped].map((e) => e.replace(/\//g, '\\/')),
    ...transported,
  ];
  // Very short forms could only come from a near-empty value; never blank out single characters.
  return [...new Set(forms)].filter((f) => f.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}
