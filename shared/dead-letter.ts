import { ChangeMessageVisibilityCommand, SendMessageCommand, type SQSClient, type MessageAttributeValue } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { classifyAwsFailure } from './aws-errors.js';
import type { ImportError } from './errors.js';
import { DLQ_ATTRIBUTES } from './message.js';
import { scrub } from './redact.js';

/**
 * Dead-lettering with a reason. SQS's own redrive moves a message after maxReceiveCount but
 * says nothing about why; the worker instead sends the unchanged body to the DLQ itself with
 * message attributes naming the error code, step and a readable reason, then acknowledges the
 * original. SQS's redrive stays as the safety net for crashes and timeouts.
 */
const MAX_REASON_LENGTH = 1_000;

export function deadLetterAttributes(error: ImportError, record: SQSRecord, sub: string | undefined, userPoolId: string | undefined): Record<string, MessageAttributeValue> {
  const text = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });
  const attributes: Record<string, MessageAttributeValue> = {
    [DLQ_ATTRIBUTES.errorCode]: text(error.code),
    [DLQ_ATTRIBUTES.step]: text(error.step),
    [DLQ_ATTRIBUTES.kind]: text(error.kind),
    [DLQ_ATTRIBUTES.reason]: text(scrub(error.message).slice(0, MAX_REASON_LENGTH)),
    [DLQ_ATTRIBUTES.failedAt]: text(new Date().toISOString()),
    [DLQ_ATTRIBUTES.receiveCount]: { DataType: 'Number', StringValue: record.attributes.ApproximateReceiveCount ?? '1' },
  };
  if (sub) attributes[DLQ_ATTRIBUTES.sub] = text(sub);
  if (userPoolId) attributes[DLQ_ATTRIBUTES.userPoolId] = text(userPoolId);
  return attributes;
}

export async function sendToDeadLetterQueue(
  sqs: SQSClient,
  dlqUrl: string,
  record: SQSRecord,
  error: ImportError,
  user: { sub?: string | undefined; userPoolId?: string | undefined } = {},
): Promise<void> {
  try {
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: dlqUrl,
        MessageBody: record.body,
        MessageAttributes: deadLetterAttributes(error, record, user.sub, user.userPoolId),
      }),
    );
  } catch (e) {
    // Not acknowledged: the message stays in the queue and SQS's redrive remains the backstop.
    throw classifyAwsFailure(e, 'deadLetter', 'sending to the dead-letter queue', 'AWS_UNAVAILABLE');
  }
}

/** Visibility timeout for the next delivery after a transient failure: exponential, capped, jittered. */
export function retryDelaySeconds(receiveCount: number, baseSeconds: number, maxSeconds: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxSeconds, baseSeconds * 2 ** Math.max(0, receiveCount - 1));
  // Half fixed, half jitter: spreads a burst of retries without ever retrying at once.
  return Math.min(43_200, Math.max(1, Math.round(ceiling / 2 + (random() * ceiling) / 2)));
}

export async function delayRedelivery(sqs: SQSClient, queueUrl: string, record: SQSRecord, seconds: number): Promise<void> {
  await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: record.receiptHandle, VisibilityTimeout: seconds }));
}
