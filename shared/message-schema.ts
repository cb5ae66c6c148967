import { en } from 'zod/locales';
import * as z from 'zod/mini';

/**
 * The queue message: one per user to import. Versioned so that a worker never guesses at a
 * shape it does not know. It carries identifiers and the non-secret attributes the plan
 * needs — never a credential: those are read from Secrets Manager by the worker.
 *
 * Written with `zod/mini` because this module is bundled into the post-confirmation trigger,
 * whose cold start is on the sign-up's path: mini is about a quarter of classic zod's size in
 * the bundle (issue 12). It imports nothing else.
 */

// Classic zod loads its English messages on import; mini does not. Loading them here keeps the
// default texts ("Invalid option: expected one of ...") the same in the trigger as in the worker.
z.config(en());

export const MESSAGE_VERSION = 1;

/** The format of Cognito's `sub` (a UUID; compared case-insensitively). */
export const COGNITO_SUB = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const MessageSourceSchema = z.enum(['signup', 'backfill', 'reconcile', 'manual']);
export type MessageSource = z.infer<typeof MessageSourceSchema>;

/** The message's fields, each with the text people read when it is wrong. */
export const queueMessageShape = {
  v: z.literal(MESSAGE_VERSION, { error: `unsupported message version: this worker reads version ${MESSAGE_VERSION}` }),
  userPoolId: z
    .string({ error: 'the Cognito user pool id, e.g. "eu-west-1_AbCdEf123"' })
    .check(z.regex(/^[\w-]+_[0-9a-zA-Z]+$/, { error: 'must be a Cognito user pool id such as "eu-west-1_AbCdEf123"' })),
  username: z.string({ error: 'the Cognito username' }).check(z.minLength(1, { error: 'must not be empty' })),
  // Cognito's sub is a UUID. Anything else is refused: the sub becomes part of a per-user secret
  // id and of ledger keys, so "../../master-token" must never get that far.
  sub: z
    .string({ error: 'the user\'s Cognito "sub" attribute' })
    .check(
      z.minLength(1, { error: 'must not be empty: the user\'s Cognito "sub"' }),
      z.regex(COGNITO_SUB, { error: 'must be the user\'s Cognito "sub", a UUID such as "6f1c2a3b-0d4e-4f5a-8b6c-7d8e9f0a1b2c"' }),
    ),
  attributes: z.record(z.string(), z.string(), { error: 'an object of attribute name to string value' }),
  source: MessageSourceSchema,
  requestedAt: z.iso.datetime({ error: 'must be an ISO-8601 timestamp such as "2026-01-31T12:00:00.000Z"' }),
};

export const QueueMessageMiniSchema = z.strictObject(queueMessageShape);
export type QueueMessage = z.infer<typeof QueueMessageMiniSchema>;

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
  return QueueMessageMiniSchema.parse({
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
