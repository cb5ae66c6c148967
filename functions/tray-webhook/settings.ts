import * as z from 'zod';
import { ImportError } from '../../shared/errors.js';
import { type ImportPlan, loadPlanFile, parsePlanJson } from '../../shared/plan.js';
import { formatIssues } from '../../shared/validation.js';

/**
 * Settings of Tray's expired-auth webhook, read from the environment and validated at cold start
 * (the stack sets them; `npm start -- --serve` and the tests set the same variables). Invalid
 * settings throw: the function URL then answers 502 and Tray's notification is not lost for
 * good (Tray shows the failure; the Errors alarm tells the operators).
 */
export const WebhookEnvSchema = z.object({
  LEDGER_TABLE: z.string({ error: 'the ledger table name' }).min(1),
  QUEUE_URL: z.url({ error: 'the import queue URL (rotations are enqueued there)' }),
  /** The pool whose users the ledger keys by `sub`: Tray's notification names the user by externalUserId only. */
  USER_POOL_ID: z.string({ error: 'the Cognito user pool id the ledger is keyed by' }).min(1),
  WEBHOOK_TOKEN_SECRET_ID: z.string({ error: 'the name or ARN of the secret holding the webhook token' }).min(1),
  /** How long the token is kept between invocations; a rotated token is picked up after at most this long. */
  WEBHOOK_TOKEN_CACHE_MS: z.coerce.number().int().min(0).max(86_400_000).default(300_000),
  /**
   * A notification of an auth already handled within this many hours does nothing again (Tray may
   * repeat it). Past the window it is handled anew: the auth is still in its slot, so the last
   * rotation did not happen or did not help.
   */
  EXPIRY_REPEAT_WINDOW_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  IMPORT_PLAN: z.string().optional(),
  IMPORT_PLAN_FILE: z.string().optional(),
});

export type WebhookEnv = z.infer<typeof WebhookEnvSchema>;

export interface WebhookConfig extends WebhookEnv {
  plan: ImportPlan;
}

export function loadWebhookConfig(env: NodeJS.ProcessEnv = process.env): WebhookConfig {
  const parsed = WebhookEnvSchema.safeParse(env, { reportInput: true });
  if (!parsed.success) {
    throw new ImportError('PLAN_INVALID', 'plan', `webhook settings are invalid: ${formatIssues(parsed.error.issues)}`);
  }
  const settings = parsed.data;
  let plan: ImportPlan;
  if (settings.IMPORT_PLAN) plan = parsePlanJson(settings.IMPORT_PLAN, 'IMPORT_PLAN');
  else if (settings.IMPORT_PLAN_FILE) plan = loadPlanFile(settings.IMPORT_PLAN_FILE);
  else throw new ImportError('PLAN_INVALID', 'plan', 'no import plan: set IMPORT_PLAN (the plan as JSON) or IMPORT_PLAN_FILE (a path)');
  return { ...settings, plan };
}
