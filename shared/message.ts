import { z } from 'zod';
import { ImportError } from './errors.js';
import { formatIssues } from './validation.js';

/**
 * The queue message: one per user to import. Versioned so that a worker never guesses at a
 * shape it does not know. It carries identifiers and the non-secret attributes the plan
 * needs — never a credential: those are read from Secrets Manager by the worker.
 *
 * This module is bundled into the post-confirmation trigger, so it imports only zod.
 */
export const MESSAGE_VERSION = 1;

/** The format of Cognito's `sub` (a UUID; compared case-insensitively). */
export const COGNITO_SUB = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const MessageSourceSchema = z.enum(['signup', 'backfill', 'reconcile', 'manual']);
export type MessageSource = z.infer<typeof MessageSourceSchema>;

export const QueueMessageSchema = z.strictObject({
  v: z.literal(MESSAGE_VERSION, { error: `unsupported message version: this worker reads version ${MESSAGE_VERSION}` }),
  userPoolId: z
    .string({ error: 'the Cognito user pool id, e.g. "eu-west-1_AbCdEf123"' })
    .regex(/^[\w-]+_[0-9a-zA-Z]+$/, { error: 'must be a Cognito user pool id such as "eu-west-1_AbCdEf123"' }),
  username: z.string({ error: 'the Cognito username' }).min(1, { error: 'must not be empty' }),
  // Cognito's sub is a UUID. Anything else is refused: the sub becomes part of a per-user secret
  // id and of ledger keys, so "../../master-token" must never get that far.
  sub: z
    .string({ error: 'the user\'s Cognito "sub" attribute' })
    .min(1, { error: 'must not be empty: the user\'s Cognito "sub"' })
    .regex(COGNITO_SUB, { error: 'must be the user\'s Cognito "sub", a UUID such as "6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c"' }),
  attributes: z.record(z.string(), z.string(), { error: 'an object of attribute name to string value' }),
  source: MessageSourceSchema,
  requestedAt: z.iso.datetime({ error: 'must be an ISO-8601 timestamp such as "2026-01-31T12:00:00.000Z"' }),
});

export type QueueMessage = z.infer<typeof QueueMessageSchema>;

/** Parses an SQS body; a bad body is a permanent INVALID_MESSAGE naming each field. */
export function parseQueueMessage(body: string): QueueMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new ImportError('INVALID_MESSAGE', 'parse', `message body is not JSON (${body.length} characters); send a JSON object of version ${MESSAGE_VERSION}`);
  }
  const result = QueueMessageSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw new ImportError('INVALID_MESSAGE', 'parse', `message is invalid: ${formatIssues(result.error.issues)}`);
  return result.data;
}

/**
 * Builds a message from a Cognito user's attributes, keeping only those listed: the trigger and
 * the backfill get the list from the plan (through the MESSAGE_ATTRIBUTES setting) so that no
 * attribute the plan does not use leaves Cognito.
 */
export function buildQueueMessage(input: {
  userPoolId: string;
  username: string;
  userAttributes: Readonly<Record<string, string | undefined>>;
  attributeNames: readonly string[];
  source: MessageSource;
  now?: Date;
}): QueueMessage {
  const sub = input.userAttributes.sub;
  const attributes: Record<string, string> = {};
  for (const name of input.attributeNames) {
    const value = input.userAttributes[name];
    if (value !== undefined) attributes[name] = value;
  }
  return QueueMessageSchema.parse({
    v: MESSAGE_VERSION,
    userPoolId: input.userPoolId,
    username: input.username,
    sub,
    attributes,
    source: input.source,
    requestedAt: (input.now ?? new Date()).toISOString(),
  });
}

/** `MESSAGE_ATTRIBUTES="custom:tenant,email,name"` → list. */
export function parseAttributeList(value: string | undefined): string[] {
  return (value ?? 'email,name')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
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
