import { createHash } from 'node:crypto';
import { SendMessageCommand, type SendMessageCommandInput, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEAD_LETTER_FAILED_METRIC,
  DeadLetterFailedError,
  isDeadLetterFailure,
  SQS_MAX_MESSAGE_BYTES,
  sendToDeadLetterQueue,
  sqsMessageBytes,
  TruncatedReferenceSchema,
} from '../shared/dead-letter.js';
import { ImportError } from '../shared/errors.js';
import { DLQ_ATTRIBUTES } from '../shared/message.js';
import { registerSecret, resetSecretsForTests } from '../shared/redact.js';

/** Issue #11, item 4: failing to dead-letter must make noise, and what SQS would reject is never sent. */
const SUB = '00000000-0000-4000-8000-000000000001';
const POOL = 'us-east-1_DemoPool1';
const record = (body: string) =>
  ({ messageId: 'm-1', receiptHandle: 'rh', body, attributes: { ApproximateReceiveCount: '5' } }) as unknown as SQSRecord;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A stand-in for SQS's own checks on SendMessage: size (body and attributes) and valid Unicode. */
function strictSqs() {
  const sqs = new SQSClient({ region: 'us-east-1' });
  const mock = mockClient(sqs);
  const sent: SendMessageCommandInput[] = [];
  mock.on(SendMessageCommand).callsFake((input: SendMessageCommandInput) => {
    const attributes = input.MessageAttributes ?? {};
    const texts = [input.MessageBody ?? '', ...Object.values(attributes).map((a) => a.StringValue ?? '')];
    if (texts.some((t) => LONE_SURROGATE.test(t)))
      throw Object.assign(new Error('Invalid characters found'), { name: 'InvalidMessageContents' });
    if (sqsMessageBytes(input.MessageBody ?? '', attributes) > SQS_MAX_MESSAGE_BYTES)
      throw Object.assign(new Error('Message must be shorter than 1048576 bytes'), { name: 'InvalidParameterValue' });
    sent.push(input);
    return { MessageId: `dlq-${sent.length}` };
  });
  return { sqs, mock, sent };
}

afterEach(() => resetSecretsForTests());

describe('dead-lettering', () => {
  it('cuts the reason on a code-point boundary: an emoji at character 1,000 does not leave a lone surrogate', async () => {
    const { sqs, sent } = strictSqs();
    const reason = `${'r'.repeat(999)}😀😀 and more`;
    const outcome = await sendToDeadLetterQueue(
      sqs,
      'https://dlq',
      record('{"v":1}'),
      new ImportError('TRAY_REJECTED', 'createSolutionInstance', reason),
      { sub: SUB, userPoolId: POOL },
    );
    expect(outcome.sent).toBe('message');
    const value = sent[0]!.MessageAttributes![DLQ_ATTRIBUTES.reason]!.StringValue!;
    expect(value.length).toBeLessThanOrEqual(1_000);
    expect(value).not.toMatch(LONE_SURROGATE);
    expect(value).toBe(`${'r'.repeat(999)}…`);
  });

  it('dead-letters a body that no longer fits with its reason attributes as a reference, keeping the reason', async () => {
    const { sqs, sent } = strictSqs();
    const body = JSON.stringify({ v: 1, sub: SUB, attributes: { big: 'é'.repeat((SQS_MAX_MESSAGE_BYTES - 200) / 2) } });
    expect(Buffer.byteLength(body)).toBeLessThan(SQS_MAX_MESSAGE_BYTES); // it fitted on the import queue
    const outcome = await sendToDeadLetterQueue(
      sqs,
      'https://dlq',
      record(body),
      new ImportError('INVALID_MESSAGE', 'parse', 'message is invalid: $.attributes.big: too long'),
      { sub: SUB, userPoolId: POOL },
    );
    expect(outcome.sent).toBe('reference');
    expect(outcome.bytes).toBeLessThan(16_384);
    const reference = TruncatedReferenceSchema.parse(JSON.parse(sent[0]!.MessageBody!));
    expect(reference).toMatchObject({ v: 1, truncatedReference: true, sub: SUB, userPoolId: POOL, originalBytes: Buffer.byteLength(body) });
    expect(reference.sha256).toBe(createHash('sha256').update(body).digest('hex'));
    expect(body.startsWith(reference.bodyPrefix)).toBe(true);
    expect(reference.bodyPrefix.length).toBeGreaterThan(1_000);
    expect(sent[0]!.MessageAttributes).toMatchObject({
      [DLQ_ATTRIBUTES.errorCode]: { StringValue: 'INVALID_MESSAGE' },
      [DLQ_ATTRIBUTES.reason]: { StringValue: 'message is invalid: $.attributes.big: too long' },
      [DLQ_ATTRIBUTES.sub]: { StringValue: SUB },
    });
  });

  it('sends a body that fits unchanged, byte for byte', async () => {
    const { sqs, sent } = strictSqs();
    const body = JSON.stringify({ v: 1, sub: SUB, pad: 'x'.repeat(500_000) });
    await expect(
      sendToDeadLetterQueue(sqs, 'https://dlq', record(body), new ImportError('TRAY_REJECTED', 'authorize', 'no'), { sub: SUB }),
    ).resolves.toMatchObject({ sent: 'message' });
    expect(sent[0]!.MessageBody).toBe(body);
  });

  it('surfaces a DLQ it cannot reach as DEAD_LETTER_FAILED, keeping the original failure and no secret', async () => {
    const sqs = new SQSClient({ region: 'us-east-1' });
    registerSecret('canary-dlq-secret-1234');
    mockClient(sqs)
      .on(SendMessageCommand)
      .rejects(Object.assign(new Error('connect ECONNREFUSED while sending canary-dlq-secret-1234'), { name: 'TimeoutError' }));
    const original = new ImportError('TRAY_REJECTED', 'createSolutionInstance', 'Tray rejected it');
    const failure = await sendToDeadLetterQueue(sqs, 'https://dlq', record('{}'), original, { sub: SUB }).catch((e: unknown) => e);
    expect(isDeadLetterFailure(failure)).toBe(true);
    expect(failure).toBeInstanceOf(DeadLetterFailedError);
    expect(failure).toMatchObject({ code: 'DEAD_LETTER_FAILED', kind: 'transient', step: 'deadLetter', original });
    expect((failure as Error).message).toContain('TimeoutError');
    expect((failure as Error).message).toContain('while dead-lettering TRAY_REJECTED at createSolutionInstance');
    expect((failure as Error).message).not.toContain('canary-dlq-secret-1234');
    expect(DEAD_LETTER_FAILED_METRIC).toBe('DeadLetterFailed');
  });
});
