import * as z from 'zod';
import { ImportError } from '../errors.js';
import { COGNITO_SUB, MESSAGE_VERSION, parseQueueMessage, type QueueMessage } from '../message.js';
import { formatIssues } from '../validation.js';

/**
 * Messages for the rest of a user's life in Tray, on the same queue as the imports. One queue,
 * because every step on a user must take turns with the others: the ledger's lease serialises an
 * offboarding behind an import still in flight, the worker's pacer keeps every Tray call of the
 * fleet inside one rate budget, and operators have one DLQ, one redrive and one set of alarms.
 * An import message has no `kind`; a lifecycle message names its kind. Like imports, they carry
 * no credentials: the worker reads those from Secrets Manager.
 */
export const LifecycleKindSchema = z.enum(['offboard', 'rotate', 'upgrade']);
export type LifecycleKind = z.infer<typeof LifecycleKindSchema>;

export const LifecycleSourceSchema = z.enum(['cognito-delete', 'operator', 'secret-change', 'tray-expiry', 'plan-change']);
export type LifecycleSource = z.infer<typeof LifecycleSourceSchema>;

export const LifecycleMessageSchema = z.strictObject({
  v: z.literal(MESSAGE_VERSION),
  kind: LifecycleKindSchema,
  userPoolId: z.string().min(1),
  sub: z.string().regex(COGNITO_SUB, { error: 'a Cognito sub (a UUID)' }),
  username: z.string().optional(),
  source: LifecycleSourceSchema,
  /** When the event or the operator asked for it (ISO 8601). */
  requestedAt: z.iso.datetime(),
  /** rotate: the auth slots (externalIds) to rotate; absent: every slot whose credentials come from Secrets Manager. */
  slots: z.array(z.string().min(1)).optional(),
  /** rotate: the secret whose change caused it (for the log and the ledger). */
  secretId: z.string().optional(),
});
export type LifecycleMessage = z.infer<typeof LifecycleMessageSchema>;

export type WorkMessage = { kind: 'import'; message: QueueMessage } | { kind: LifecycleKind; message: LifecycleMessage };

/** Reads a queue body: an import (no `kind`) or a lifecycle message. A bad body is a permanent INVALID_MESSAGE naming each field. */
export function parseWorkMessage(body: string): WorkMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return { kind: 'import', message: parseQueueMessage(body) };
  }
  if (raw === null || typeof raw !== 'object' || !('kind' in raw)) return { kind: 'import', message: parseQueueMessage(body) };
  const parsed = LifecycleMessageSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    throw new ImportError('INVALID_MESSAGE', 'parse', `lifecycle message is invalid: ${formatIssues(parsed.error.issues)}`);
  }
  return { kind: parsed.data.kind, message: parsed.data };
}

export function buildLifecycleMessage(input: Omit<LifecycleMessage, 'v' | 'requestedAt'> & { requestedAt?: string }): LifecycleMessage {
  return LifecycleMessageSchema.parse({ v: MESSAGE_VERSION, requestedAt: new Date().toISOString(), ...input });
}
