/**
 * Secret values must never reach a log line, an error, a ledger item or a DLQ attribute.
 * Two layers: (1) code never puts them there (messages are built from field names), and
 * (2) every value the process learns to be secret — the master token, user tokens, imported
 * credentials — is registered here, and everything bound for logs, the ledger or the DLQ is
 * scrubbed of them. Layer 2 catches what layer 1 misses (e.g. an upstream error echoing input).
 */
const REDACTED = '[redacted]';
/** Short values ("1", "eu") would blank out harmless text and are not credentials. */
const MIN_SECRET_LENGTH = 6;
/** Keys whose values are secret whatever they contain. */
const SECRET_KEYS = /^(authorization|accesstoken|access_token|token|mastertoken|master_token|password|secret|secretstring|credentials|apikey|api_key|usertoken)$/i;

/**
 * Bounded, oldest forgotten first: a warm worker mints a user token per user, and the values
 * that matter are those of the records in flight. Scrubbing costs one search per entry.
 */
const MAX_KNOWN = 1_000;
const known = new Set<string>();

export function registerSecret(value: unknown): void {
  if (typeof value === 'string' || typeof value === 'number') {
    const text = String(value);
    if (text.length < MIN_SECRET_LENGTH) return;
    known.delete(text); // re-registering makes it the newest
    known.add(text);
    if (known.size > MAX_KNOWN) known.delete(known.values().next().value as string);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) registerSecret(v);
  }
}

export function scrub(text: string): string {
  let out = text;
  for (const secret of known) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
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

/** For tests: forget registered values between cases. */
export function resetSecretsForTests(): void {
  known.clear();
}
