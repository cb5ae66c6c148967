import { createHash } from 'node:crypto';
import { type Message, type MessageAttributeValue, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import * as z from 'zod';
import { ImportError } from './errors.js';
import { parseWorkMessage } from './lifecycle/message.js';
import { DLQ_ATTRIBUTES } from './message.js';
import { WORKER_METRIC } from './names.js';
import { scrub, scrubExcerpt, truncateCodePoints } from './redact.js';

/**
 * Dead-lettering with a reason. SQS's own redrive moves a message after maxReceiveCount but
 * says nothing about why; the worker instead sends the unchanged body to the DLQ itself with
 * message attributes naming the error code, step and a readable reason, then acknowledges the
 * original. SQS's redrive stays as the safety net for crashes and timeouts.
 *
 * Dead-lettering must not fail quietly: a body that no longer fits once the reason attributes
 * are added is dead-lettered as a reference (its hash and first few KB), and a send that fails
 * anyway is thrown as DeadLetterFailedError for the worker to log and count (DeadLetterFailed).
 *
 * This module is the one vocabulary of dead-lettered messages: `sendToDeadLetterQueue` writes
 * them and `readDeadLetter` reads them back, for the CLI, the local runner and the tests alike.
 */
const MAX_REASON_LENGTH = 1_000;
/** SQS's limit on a message, body and attributes together (names, data types and values count). */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;
/** How much of an oversized body the reference keeps: enough to recognise the message. */
const REFERENCE_PREFIX_CHARS = 4_096;
/** Metric the worker emits (Count, 1) when sending to the DLQ fails; alarmed on in infra. */
export const DEAD_LETTER_FAILED_METRIC = WORKER_METRIC.deadLetterFailed;

export function deadLetterAttributes(
  error: ImportError,
  record: SQSRecord,
  sub: string | undefined,
  userPoolId: string | undefined,
): Record<string, MessageAttributeValue> {
  const text = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });
  const attributes: Record<string, MessageAttributeValue> = {
    [DLQ_ATTRIBUTES.errorCode]: text(error.code),
    [DLQ_ATTRIBUTES.step]: text(error.step),
    [DLQ_ATTRIBUTES.kind]: text(error.kind),
    // Scrubbed before it is cut (a cut secret would no longer be recognised), and cut on a
    // code-point boundary: SQS rejects a value holding half an emoji (a lone surrogate).
    [DLQ_ATTRIBUTES.reason]: text(scrubExcerpt(error.message, MAX_REASON_LENGTH)),
    [DLQ_ATTRIBUTES.failedAt]: text(new Date().toISOString()),
    [DLQ_ATTRIBUTES.receiveCount]: { DataType: 'Number', StringValue: record.attributes.ApproximateReceiveCount ?? '1' },
  };
  if (sub) attributes[DLQ_ATTRIBUTES.sub] = text(sub);
  if (userPoolId) attributes[DLQ_ATTRIBUTES.userPoolId] = text(userPoolId);
  return attributes;
}

/** The size SQS counts for a message: UTF-8 bytes of the body, and of each attribute's name, type and value. */
export function sqsMessageBytes(body: string, attributes: Record<string, MessageAttributeValue>): number {
  let bytes = Buffer.byteLength(body, 'utf8');
  for (const [name, value] of Object.entries(attributes)) {
    bytes +=
      Buffer.byteLength(name, 'utf8') +
      Buffer.byteLength(value.DataType ?? '', 'utf8') +
      Buffer.byteLength(value.StringValue ?? '', 'utf8') +
      (value.BinaryValue?.byteLength ?? 0);
  }
  return bytes;
}

/** The DLQ body for a message too big to dead-letter with its reason: enough to find and re-enqueue the user. */
export const TruncatedReferenceSchema = z.strictObject({
  v: z.literal(1),
  truncatedReference: z.literal(true),
  sub: z.string().optional(),
  userPoolId: z.string().optional(),
  /** SHA-256 (hex) of the original body's UTF-8 bytes. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The start of the original body, cut on a code-point boundary. */
  bodyPrefix: z.string(),
  originalBytes: z.number().int().positive(),
});
export type TruncatedReference = z.infer<typeof TruncatedReferenceSchema>;

export function truncatedReference(body: string, user: { sub?: string | undefined; userPoolId?: string | undefined }): TruncatedReference {
  return {
    v: 1,
    truncatedReference: true,
    ...(user.sub ? { sub: user.sub } : {}),
    ...(user.userPoolId ? { userPoolId: user.userPoolId } : {}),
    sha256: createHash('sha256').update(body, 'utf8').digest('hex'),
    bodyPrefix: scrub(truncateCodePoints(body, REFERENCE_PREFIX_CHARS)),
    originalBytes: Buffer.byteLength(body, 'utf8'),
  };
}

/**
 * Sending to the DLQ failed: the message is not acknowledged and stays on the queue, so SQS's
 * redrive remains the backstop, but without a reason. `original` is the failure being
 * dead-lettered; `cause` the SQS error.
 */
export class DeadLetterFailedError extends ImportError {
  readonly original: ImportError;
  constructor(original: ImportError, cause: unknown) {
    const e = cause as { name?: string; message?: string };
    super(
      'DEAD_LETTER_FAILED',
      'deadLetter',
      `sending to the dead-letter queue failed (${e?.name ?? 'Error'}${e?.message ? `: ${scrubExcerpt(e.message, 300)}` : ''}) while dead-lettering ${original.code} at ${original.step}; the message stays on the queue`,
      { cause },
    );
    this.name = 'DeadLetterFailedError';
    this.original = original;
  }
}

export function isDeadLetterFailure(e: unknown): e is DeadLetterFailedError {
  return e instanceof DeadLetterFailedError;
}

export interface DeadLetterOutcome {
  /** `reference`: the body did not fit with the reason attributes; the DLQ holds a TruncatedReference. */
  sent: 'message' | 'reference';
  /** Size SQS counted for what was sent. */
  bytes: number;
}

/**
 * Sends `record` to the DLQ with its reason. Resolves with what was sent; rejects only with a
 * DeadLetterFailedError (code DEAD_LETTER_FAILED, transient), which the caller must log and count
 * as DEAD_LETTER_FAILED_METRIC before letting the record fail.
 */
export async function sendToDeadLetterQueue(
  sqs: SQSClient,
  dlqUrl: string,
  record: SQSRecord,
  error: ImportError,
  user: { sub?: string | undefined; userPoolId?: string | undefined } = {},
  options: { maxMessageBytes?: number } = {},
): Promise<DeadLetterOutcome> {
  const limit = options.maxMessageBytes ?? SQS_MAX_MESSAGE_BYTES;
  try {
    const attributes = deadLetterAttributes(error, record, user.sub, user.userPoolId);
    let body = record.body;
    let sent: DeadLetterOutcome['sent'] = 'message';
    if (sqsMessageBytes(body, attributes) > limit) {
      body = JSON.stringify(truncatedReference(record.body, user));
      sent = 'reference';
    }
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: body, MessageAttributes: attributes }));
    return { sent, bytes: sqsMessageBytes(body, attributes) };
  } catch (e) {
    // Not acknowledged: the message stays in the queue and SQS's redrive remains the backstop.
    throw new DeadLetterFailedError(error, e);
  }
}

/**
 * A dead-lettered message as operators see it. `worker`: dead-lettered with a reason (the
 * attributes above); `sqs-redrive`: moved by the queue's redrive policy after a crash or
 * timeout, without one (the CLI then shows the ledger's lastError).
 */
export const DeadLetterSchema = z.object({
  messageId: z.string(),
  origin: z.enum(['worker', 'sqs-redrive']),
  sub: z.string().optional(),
  username: z.string().optional(),
  userPoolId: z.string().optional(),
  errorCode: z.string().optional(),
  step: z.string().optional(),
  kind: z.string().optional(),
  reason: z.string().optional(),
  failedAt: z.string().optional(),
  /** Deliveries the message had when it was dead-lettered. */
  receiveCount: z.number().optional(),
  /** When the message entered the DLQ (SQS's SentTimestamp). */
  sentAt: z.string().optional(),
  /** Set when the body is not a valid queue message (it will fail again if redriven). */
  bodyProblem: z.string().optional(),
  /** The worker could only dead-letter a reference to the message (it was too big): never moved back. */
  truncatedReference: z.boolean().optional(),
});
export type DeadLetter = z.infer<typeof DeadLetterSchema>;

/** Reads a message received from the DLQ (with `MessageAttributeNames: ['All']` and `MessageSystemAttributeNames: ['All']`). */
export function readDeadLetter(m: Pick<Message, 'MessageId' | 'Body' | 'MessageAttributes' | 'Attributes'>): DeadLetter {
  const attr = (name: string): string | undefined => m.MessageAttributes?.[name]?.StringValue;
  const info: DeadLetter = {
    messageId: m.MessageId ?? '',
    origin: attr(DLQ_ATTRIBUTES.errorCode) ? 'worker' : 'sqs-redrive',
    sub: attr(DLQ_ATTRIBUTES.sub),
    userPoolId: attr(DLQ_ATTRIBUTES.userPoolId),
    errorCode: attr(DLQ_ATTRIBUTES.errorCode),
    step: attr(DLQ_ATTRIBUTES.step),
    kind: attr(DLQ_ATTRIBUTES.kind),
    reason: attr(DLQ_ATTRIBUTES.reason),
    failedAt: attr(DLQ_ATTRIBUTES.failedAt),
  };
  const sent = Number(m.Attributes?.SentTimestamp);
  if (m.Attributes?.SentTimestamp !== undefined && Number.isFinite(sent)) info.sentAt = new Date(sent).toISOString();
  const count = attr(DLQ_ATTRIBUTES.receiveCount) ?? m.Attributes?.ApproximateReceiveCount;
  if (count !== undefined && Number.isFinite(Number(count))) info.receiveCount = Number(count);
  try {
    // Imports and lifecycle steps share the queue, so either can be dead-lettered.
    const { message } = parseWorkMessage(m.Body ?? '');
    info.sub ??= message.sub;
    info.userPoolId ??= message.userPoolId;
    if (message.username !== undefined) info.username = message.username;
  } catch (e) {
    info.bodyProblem = (e as Error).message;
    const reference = readTruncatedReference(m.Body ?? '');
    if (reference) {
      info.truncatedReference = true;
      info.sub ??= reference.sub;
      info.userPoolId ??= reference.userPoolId;
    } else {
      // Enough of a broken body to name the user, when it has that much.
      const loose = looseUser(m.Body ?? '');
      info.sub ??= loose.sub;
      info.username ??= loose.username;
    }
  }
  return info;
}

function readTruncatedReference(body: string): TruncatedReference | undefined {
  try {
    const parsed = TruncatedReferenceSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function looseUser(body: string): { sub?: string; username?: string } {
  try {
    const raw = JSON.parse(body) as Record<string, unknown> | null;
    return {
      ...(typeof raw?.sub === 'string' ? { sub: raw.sub } : {}),
      ...(typeof raw?.username === 'string' ? { username: raw.username } : {}),
    };
  } catch {
    return {};
  }
}
