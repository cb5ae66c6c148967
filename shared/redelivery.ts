import { ChangeMessageVisibilityCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { backoffMs, RETRY_POLICY } from './retry.js';

/**
 * After a transient failure the record goes back to SQS; its next delivery is pushed back by a
 * visibility timeout that grows with the attempt count (RETRY_POLICY.redelivery): half fixed,
 * half jitter, so a burst of retries spreads out without any being retried at once.
 */
export function retryDelaySeconds(attempt: number, baseSeconds: number, maxSeconds: number, random: () => number = Math.random): number {
  const { jitter, sqsMaxSeconds } = RETRY_POLICY.redelivery;
  const seconds = backoffMs(attempt, { baseDelayMs: baseSeconds, maxDelayMs: maxSeconds, jitter }, random);
  return Math.min(sqsMaxSeconds, Math.max(1, seconds));
}

export async function delayRedelivery(sqs: SQSClient, queueUrl: string, record: SQSRecord, seconds: number): Promise<void> {
  await sqs.send(
    new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: record.receiptHandle, VisibilityTimeout: seconds }),
  );
}
