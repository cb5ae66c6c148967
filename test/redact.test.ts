import { afterEach, describe, expect, it } from 'vitest';
import {
  jsonScrubber,
  MIN_SECRET_LENGTH,
  registerSecret,
  resetSecretsForTests,
  scrub,
  scrubExcerpt,
  scrubValue,
  truncateCodePoints,
  unredactablePath,
} from '../shared/redact.js';

afterEach(() => resetSecretsForTests());

/** Canary values: each breaks the old exact-substring redaction in its own way. */
const CANARIES = {
  quote: 'canary"quote-7731',
  backslash: 'canary\\slash-7731',
  nonAscii: 'cänäry-ünïcode-7731',
  emoji: 'canary-😀-emoji-7731',
  spaces: 'canary with spaces & =+/?#',
} as const;

/** Every way a server or gateway echoing the request may have written the value. */
const ENCODERS: Record<string, (s: string) => string> = {
  raw: (s) => s,
  json: (s) => JSON.stringify(s).slice(1, -1),
  jsonInJson: (s) => JSON.stringify(JSON.stringify(s)).slice(1, -1),
  asciiJson: (s) =>
    JSON.stringify(s)
      .slice(1, -1)
      .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  asciiJsonUpper: (s) =>
    JSON.stringify(s)
      .slice(1, -1)
      .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`),
  asciiJsonInJson: (s) =>
    JSON.stringify(JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)).slice(
      1,
      -1,
    ),
  uriComponent: (s) => encodeURIComponent(s),
  uriLowerHex: (s) => encodeURIComponent(s).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
  form: (s) => new URLSearchParams({ k: s }).toString().slice(2),
  base64: (s) => Buffer.from(s).toString('base64'),
  base64url: (s) => Buffer.from(s).toString('base64url'),
  // Inside a Basic header: the value starts at a byte offset that is not a multiple of three.
  basicAuth: (s) => `Basic ${Buffer.from(`user:${s}`).toString('base64')}`,
  basicAuthOffset2: (s) => `Basic ${Buffer.from(`ab:${s}`).toString('base64')}`,
  basicAuthOffset0: (s) => `Basic ${Buffer.from(`abc${s}`).toString('base64')}`,
};

describe('redaction', () => {
  it('scrubs registered values wherever they appear, including nested credentials', () => {
    registerSecret({ apiKey: 'abcdef-123456', nested: { password: 'pa55word-xyz' } });
    expect(scrub('key=abcdef-123456 and pa55word-xyz')).toBe('key=[redacted] and [redacted]');
  });

  it('does not treat short values as secrets', () => {
    registerSecret('eu');
    registerSecret('seven77');
    expect(scrub('region eu, seven77')).toBe('region eu, seven77');
  });

  it('redacts secret-named keys whatever their value', () => {
    expect(scrubValue({ authorization: 'Bearer x', accessToken: 'y', data: { api_key: 'z' }, name: 'ok' })).toEqual({
      authorization: '[redacted]',
      accessToken: '[redacted]',
      data: { api_key: '[redacted]' },
      name: 'ok',
    });
  });

  it('scrubs error messages handed to the logger', () => {
    registerSecret('tok-9876543210');
    expect(jsonScrubber('error', new Error('refused tok-9876543210'))).toMatchObject({ name: 'Error', message: 'refused [redacted]' });
  });

  describe.each(Object.entries(CANARIES))('canary with %s', (_kind, canary) => {
    it.each(Object.keys(ENCODERS))('is redacted when echoed %s-encoded', (encoding) => {
      registerSecret(canary);
      const encoded = ENCODERS[encoding]!(canary);
      // As a GraphQL server or gateway would echo the request in its error.
      const echo = `{"errors":[{"message":"invalid input: ${encoded}"}]} at ${encoded}.`;
      const out = scrub(echo);
      expect(out).toContain('[redacted]');
      expect(out).not.toContain(encoded);
      // Whatever encoding, none of the canary's distinctive part survives in any form.
      expect(out).not.toContain('7731');
      expect(out).not.toMatch(/canary|c%C3%A4n|c\\u00e4n|Y2FuYXJ5/i);
    });
  });

  it('leaves surrounding text intact and scrub stays fast with many registered values', () => {
    for (let i = 0; i < 1_000; i++) registerSecret(`user-token-${i}-${'x'.repeat(20)}`);
    registerSecret(CANARIES.nonAscii);
    const text = `error: ${JSON.stringify({ variables: { data: JSON.stringify({ k: CANARIES.nonAscii }) } })} (request 42)`;
    const started = performance.now();
    for (let i = 0; i < 50; i++) scrub(text);
    const perCall = (performance.now() - started) / 50;
    expect(scrub(text)).toMatch(/^error: .*\[redacted\].* \(request 42\)$/);
    expect(scrub(text)).not.toContain('7731');
    // Generous bound (shared CI cores): the point is no per-call re-encoding of 1,000 values.
    expect(perCall).toBeLessThan(20);
  });

  it('re-registering keeps a value newest; the oldest of 1,000 is forgotten first', () => {
    registerSecret('oldest-secret-0001');
    registerSecret('kept-secret-0002');
    for (let i = 0; i < 998; i++) registerSecret(`filler-secret-${i}`);
    registerSecret('oldest-secret-0001'); // used again: now the newest
    registerSecret('one-more-secret-0003'); // evicts the least recently registered: kept-secret-0002
    expect(scrub('oldest-secret-0001 "kept-secret-0002" one-more-secret-0003')).toBe('[redacted] "kept-secret-0002" [redacted]');
  });

  it('scrubExcerpt scrubs before cutting, so a cut cannot leave half a secret unrecognised', () => {
    const secret = 'abcdefgh-secret-value';
    registerSecret(secret);
    const text = `${'x'.repeat(95)}${secret}${'y'.repeat(1_000)}`;
    const out = scrubExcerpt(text, 100);
    expect(out.length).toBeLessThanOrEqual(100);
    expect(out).not.toContain('abcde');
    expect(out.startsWith('x'.repeat(95))).toBe(true);
  });

  it('truncateCodePoints never leaves a lone surrogate', () => {
    const text = `${'a'.repeat(999)}😀tail`;
    const cut = truncateCodePoints(text, 1_000);
    expect(cut).toBe('a'.repeat(999));
    expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    expect(truncateCodePoints(`${'a'.repeat(998)}😀`, 1_000)).toBe(`${'a'.repeat(998)}😀`);
  });

  it('unredactablePath names the first too-short value by path, never by value', () => {
    expect(MIN_SECRET_LENGTH).toBeGreaterThanOrEqual(8);
    expect(unredactablePath('long-enough-value')).toBeUndefined();
    expect(unredactablePath('short')).toBe('');
    expect(unredactablePath(1234)).toBe('');
    expect(unredactablePath({ key: 'long-enough-value', nested: { pin: '1234' } })).toBe('nested.pin');
    expect(unredactablePath({ flag: true, none: null, key: 'long-enough-value' })).toBeUndefined();
  });
});
