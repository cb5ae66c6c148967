import * as z from 'zod';
import { ImportError } from './errors.js';
import { MESSAGE_VERSION, type QueueMessage, QueueMessageMiniSchema, queueMessageShape } from './message-schema.js';
import { formatIssues } from './validation.js';

/**
 * The queue message as the worker and the CLI read it. The schema itself (fields, messages, the
 * builder) is in message-schema.ts, written with zod/mini for the trigger's bundle; this module
 * adds the reading side (parse errors as ImportError) and the dead-letter attribute names.
 */
export {
  buildQueueMessage,
  COGNITO_SUB,
  MESSAGE_VERSION,
  type MessageSource,
  MessageSourceSchema,
  parseAttributeList,
  type QueueMessage,
} from './message-schema.js';

/**
 * The same fields as a classic zod object, for callers that use classic's methods
 * (`.pick(...).loose()` in the worker). Marked pure so that a bundle that does not use it
 * (the trigger's) leaves classic zod out.
 */
export const QueueMessageSchema = /* @__PURE__ */ z.strictObject(queueMessageShape);

/** Parses an SQS body; a bad body is a permanent INVALID_MESSAGE naming each field. */
export function parseQueueMessage(body: string): QueueMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new ImportError(
      'INVALID_MESSAGE',
      'parse',
      `message body is not JSON (${body.length} characters); send a JSON object of version ${MESSAGE_VERSION}`,
    );
  }
  const result = QueueMessageMiniSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw new ImportError('INVALID_MESSAGE', 'parse', `message is invalid: ${formatIssues(result.error.issues)}`);
  return result.data;
}

/** Message group/dedup-free: standard queues. The SQS message attributes we set when dead-lettering. */
export const DLQ_ATTRIBUTES = {
  errorCode: 'ErrorCode',
  step: 'ErrorStep',
  reason: 'ErrorReason',
  kind: 'ErrorKind',
  failedAt: 'FailedAt',
  receiveCount: 'ReceiveCount',
  sub: 'UserSub',
  userPoolId: 'UserPoolId',
} as const;
