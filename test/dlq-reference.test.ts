import { describe, expect, it } from 'vitest';
import { readDeadLetter, truncatedReference } from '../shared/dead-letter.js';
import { DLQ_ATTRIBUTES } from '../shared/message.js';

describe('a message dead-lettered as a reference (too big to keep whole)', () => {
  it('is recognised, with its user, so that redrive never moves it back', () => {
    const sub = '3f1c2a9e-0b7d-4c55-9a53-2f0c8e6d1b7a';
    const body = JSON.stringify(truncatedReference('x'.repeat(2_000_000), { sub, userPoolId: 'us-east-1_AbC123' }));
    const info = readDeadLetter({
      MessageId: 'm1',
      Body: body,
      MessageAttributes: { [DLQ_ATTRIBUTES.errorCode]: { DataType: 'String', StringValue: 'INVALID_MESSAGE' } },
    });
    expect(info).toMatchObject({ truncatedReference: true, sub, userPoolId: 'us-east-1_AbC123', origin: 'worker' });
    expect(info.bodyProblem).toBeDefined();
  });

  it('an ordinary invalid body is not mistaken for one', () => {
    expect(readDeadLetter({ MessageId: 'm2', Body: '{"v":1}' }).truncatedReference).toBeUndefined();
  });
});
