import * as z from 'zod/mini';
import { parseAttributeList } from '../../shared/message-schema.js';
import { formatIssues } from '../../shared/validation.js';

/**
 * Settings of the post-confirmation trigger, read from the environment at cold start (the stack
 * sets them). zod/mini keeps the trigger's bundle small. Unlike the worker, invalid settings do
 * not throw at cold start: a trigger that fails makes Cognito answer the sign-up with an error,
 * so the problem is logged and counted on each sign-up instead (`problem`), and `reconcile`
 * enqueues those users once the settings are fixed.
 */
export const TriggerEnvSchema = z.object({
  QUEUE_URL: z.url({ error: 'the import queue URL (the stack sets it)' }),
  /** Comma-separated Cognito attribute names copied into each message (default: email,name). */
  MESSAGE_ATTRIBUTES: z.optional(z.string()),
  /** Upper bound on the whole send, retries included: well inside Cognito's 5 s. */
  ENQUEUE_TIMEOUT_MS: z._default(z.coerce.number().check(z.int(), z.minimum(100), z.maximum(4_500)), 2_000),
});

export interface TriggerSettings {
  queueUrl: string;
  attributeNames: string[];
  timeoutMs: number;
  /** Set when the environment is invalid: every sign-up logs it and counts EnqueueFailed. */
  problem?: string | undefined;
}

export function loadTriggerSettings(env: NodeJS.ProcessEnv = process.env): TriggerSettings {
  const parsed = TriggerEnvSchema.safeParse(env);
  if (!parsed.success) {
    return {
      queueUrl: '',
      attributeNames: parseAttributeList(env.MESSAGE_ATTRIBUTES),
      timeoutMs: 2_000,
      problem: `trigger settings are invalid: ${formatIssues(parsed.error.issues)}`,
    };
  }
  return {
    queueUrl: parsed.data.QUEUE_URL,
    attributeNames: parseAttributeList(parsed.data.MESSAGE_ATTRIBUTES),
    timeoutMs: parsed.data.ENQUEUE_TIMEOUT_MS,
  };
}
