import { SQSClient } from '@aws-sdk/client-sqs';
import { parseAttributeList } from '../../shared/message.js';
import { createPostConfirmationHandler } from './trigger.js';

const timeoutMs = Number(process.env.ENQUEUE_TIMEOUT_MS ?? '2000');

/**
 * Lambda entry point. Two SDK attempts at most, each with short connection and request
 * timeouts, all inside `ENQUEUE_TIMEOUT_MS` (default 2 s, well inside Cognito's 5 s).
 */
export const handler = createPostConfirmationHandler({
  sqs: new SQSClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 500, requestTimeout: timeoutMs } }),
  queueUrl: process.env.QUEUE_URL ?? '',
  attributeNames: parseAttributeList(process.env.MESSAGE_ATTRIBUTES),
  timeoutMs,
});
