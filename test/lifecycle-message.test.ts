import { describe, expect, it } from 'vitest';
import { buildLifecycleMessage, parseWorkMessage } from '../shared/lifecycle/message.js';
import { buildQueueMessage } from '../shared/message.js';

const SUB = '00000000-0000-4000-8000-0000000000a1';

describe('work messages: imports and lifecycle steps on one queue', () => {
  it('reads a message without `kind` as an import, unchanged', () => {
    const message = buildQueueMessage({
      userPoolId: 'us-east-1_Pool',
      username: 'ada',
      userAttributes: { sub: SUB, email: 'ada@example.com' },
      attributeNames: ['email'],
      source: 'signup',
    });
    expect(parseWorkMessage(JSON.stringify(message))).toEqual({ kind: 'import', message });
  });

  it('reads each lifecycle kind', () => {
    for (const kind of ['offboard', 'rotate', 'upgrade'] as const) {
      const message = buildLifecycleMessage({ kind, userPoolId: 'us-east-1_Pool', sub: SUB, source: 'operator' });
      expect(parseWorkMessage(JSON.stringify(message))).toEqual({ kind, message });
    }
  });

  it('refuses a bad lifecycle message as INVALID_MESSAGE naming the field and the fix', () => {
    const bad = {
      v: 1,
      kind: 'offboard',
      userPoolId: 'us-east-1_Pool',
      sub: 'not-a-uuid',
      source: 'operator',
      requestedAt: new Date().toISOString(),
    };
    expect(() => parseWorkMessage(JSON.stringify(bad))).toThrow(
      expect.objectContaining({ code: 'INVALID_MESSAGE', kind: 'permanent', message: expect.stringContaining('$.sub') }),
    );
    const unknownKind = { ...bad, sub: SUB, kind: 'delete' };
    expect(() => parseWorkMessage(JSON.stringify(unknownKind))).toThrow(
      expect.objectContaining({ code: 'INVALID_MESSAGE', message: expect.stringContaining('$.kind') }),
    );
  });

  it('refuses a body that is not JSON the way imports always did', () => {
    expect(() => parseWorkMessage('{nope')).toThrow(
      expect.objectContaining({ code: 'INVALID_MESSAGE', message: expect.stringMatching(/not JSON/) }),
    );
  });

  it('never carries credentials: unknown fields are refused', () => {
    const withSecret = {
      ...buildLifecycleMessage({ kind: 'rotate', userPoolId: 'us-east-1_Pool', sub: SUB, source: 'operator' }),
      apiKey: 'sk-live-123456789',
    };
    expect(() => parseWorkMessage(JSON.stringify(withSecret))).toThrow(
      expect.objectContaining({ code: 'INVALID_MESSAGE', message: expect.stringContaining('apiKey') }),
    );
  });
});
