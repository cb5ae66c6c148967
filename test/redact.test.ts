import { describe, expect, it } from 'vitest';
import { jsonScrubber, registerSecret, scrub, scrubValue } from '../shared/redact.js';

describe('redaction', () => {
  it('scrubs registered values wherever they appear, including nested credentials', () => {
    registerSecret({ apiKey: 'abcdef-123456', nested: { password: 'pa55word-xyz' } });
    expect(scrub('key=abcdef-123456 and pa55word-xyz')).toBe('key=[redacted] and [redacted]');
  });

  it('does not treat short values as secrets', () => {
    registerSecret('eu');
    expect(scrub('region eu')).toBe('region eu');
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
});
