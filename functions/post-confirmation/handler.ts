import { SQSClient } from '@aws-sdk/client-sqs';
import { loadTriggerSettings } from './settings.js';
import { createPostConfirmationHandler } from './trigger.js';

const settings = loadTriggerSettings(process.env);

/**
 * Lambda entry point. Two SDK attempts at most, each with short connection and request
 * timeouts, all inside `ENQUEUE_TIMEOUT_MS` (default 2 s, well inside Cognito's 5 s).
 */
export const handler = createPostConfirmationHandler({
  ...settings,
  sqs: new SQSClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 500, requestTimeout: settings.timeoutMs } }),
});
