import * as z from 'zod';
import { type ImportPlan, parsePlanJson } from '../../shared/plan.js';
import { formatIssues } from '../../shared/validation.js';

/**
 * Settings of the lifecycle-events function (EventBridge → lifecycle messages on the import
 * queue), read from the environment and validated at cold start. The stack sets them.
 */
export const LifecycleEventsEnvSchema = z.object({
  QUEUE_URL: z.url({ error: 'the import queue URL (the stack sets it)' }),
  LEDGER_TABLE: z.string({ error: 'the ledger table name (the stack sets it)' }).min(1),
  /** The pool whose deletions are offboarded: events of any other pool are ignored. */
  USER_POOL_ID: z
    .string({ error: 'the Cognito user pool id, e.g. eu-west-1_AbCdEf123 (the stack sets it)' })
    .regex(/^[\w-]+_[0-9a-zA-Z]+$/, {
      error: 'a Cognito user pool id, e.g. eu-west-1_AbCdEf123',
    }),
  /** The import plan as JSON (the stack sets it when the plan reads secrets): secret changes are mapped to the users whose credentials read them. */
  IMPORT_PLAN: z.string().optional(),
});

export interface LifecycleEventsSettings {
  queueUrl: string;
  ledgerTable: string;
  userPoolId: string;
  /** Present when the plan reads Secrets Manager: secret-change events are handled. */
  plan?: ImportPlan | undefined;
}

/** Invalid settings fail the cold start: EventBridge retries, then the rule's DLQ keeps the event. */
export function loadLifecycleEventsSettings(env: NodeJS.ProcessEnv = process.env): LifecycleEventsSettings {
  const parsed = LifecycleEventsEnvSchema.safeParse(env);
  if (!parsed.success) throw new Error(`lifecycle-events settings are invalid: ${formatIssues(parsed.error.issues)}`);
  return {
    queueUrl: parsed.data.QUEUE_URL,
    ledgerTable: parsed.data.LEDGER_TABLE,
    userPoolId: parsed.data.USER_POOL_ID,
    plan: parsed.data.IMPORT_PLAN ? parsePlanJson(parsed.data.IMPORT_PLAN, 'IMPORT_PLAN') : undefined,
  };
}
