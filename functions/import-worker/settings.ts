import * as z from 'zod';
import { ImportError } from '../../shared/errors.js';
import { type ImportPlan, loadPlanFile, parsePlanJson, referencedSecrets } from '../../shared/plan.js';
import { RETRY_POLICY } from '../../shared/retry.js';
import { masterTokenCoverageProblem, trayUrlProblem } from '../../shared/security-policy.js';
import { formatIssues } from '../../shared/validation.js';

/**
 * Settings of the import worker, read from the environment and validated at cold start.
 * The CDK stack sets them; `npm start` and the tests set the same variables, so the code under
 * test is configured exactly as it is in AWS.
 */
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const WorkerEnvSchema = z.object({
  LEDGER_TABLE: z.string({ error: 'the ledger table name' }).min(1),
  QUEUE_URL: z.url({ error: 'the import queue URL' }),
  DLQ_URL: z.url({ error: 'the dead-letter queue URL' }),
  MASTER_TOKEN_SECRET_ID: z.string({ error: 'the name or ARN of the secret holding the Tray master token' }).min(1),
  /** How long the master token is cached; a rotated token is picked up after at most this long. */
  MASTER_TOKEN_CACHE_MS: z.coerce.number().int().min(0).max(86_400_000).default(300_000),
  IMPORT_PLAN: z.string().optional(),
  IMPORT_PLAN_FILE: z.string().optional(),
  /** Must equal the queue's redrive maxReceiveCount: on the last delivery the worker dead-letters with a reason. */
  MAX_RECEIVE_COUNT: positiveInt(5),
  /**
   * This container's share of the fleet's Tray budget, in calls per second: the stack sets it
   * to (budget − the CLI's reserve) ÷ the event source's maximum concurrency, so the fleet
   * never exceeds the budget whatever Tray's latency.
   */
  TRAY_RATE_PER_SECOND: z.coerce.number().positive().max(50).default(12),
  /** Calls one container may send at once after an idle spell (default: defaultBurst, one second of its share). */
  TRAY_BURST: z.coerce.number().int().positive().optional(),
  /** Ceiling of new Tray users per hour and pool (unset: none); beyond it users wait in the queue. */
  MAX_IMPORTS_PER_HOUR: z.coerce.number().int().positive().optional(),
  /** Upper bound on users imported at once in one invocation (the pacer decides below it). */
  MAX_USERS_IN_FLIGHT: positiveInt(64),
  TRAY_TIMEOUT_MS: positiveInt(10_000),
  /** Visibility timeout after a transient failure: base × 2^(receives−1), capped, with jitter. */
  RETRY_BASE_SECONDS: positiveInt(RETRY_POLICY.redelivery.baseSeconds),
  RETRY_MAX_SECONDS: positiveInt(RETRY_POLICY.redelivery.maxSeconds),
  TRAY_GRAPHQL_URL: z
    .string()
    .superRefine((url, ctx) => {
      const problem = trayUrlProblem(url, 'TRAY_GRAPHQL_URL');
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
});

export type WorkerEnv = z.infer<typeof WorkerEnvSchema>;

export interface WorkerConfig extends WorkerEnv {
  plan: ImportPlan;
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const parsed = WorkerEnvSchema.safeParse(env, { reportInput: true });
  if (!parsed.success) {
    throw new ImportError('PLAN_INVALID', 'plan', `worker settings are invalid: ${formatIssues(parsed.error.issues)}`);
  }
  const settings = parsed.data;
  let plan: ImportPlan;
  if (settings.IMPORT_PLAN) plan = parsePlanJson(settings.IMPORT_PLAN, 'IMPORT_PLAN');
  else if (settings.IMPORT_PLAN_FILE) plan = loadPlanFile(settings.IMPORT_PLAN_FILE);
  else throw new ImportError('PLAN_INVALID', 'plan', 'no import plan: set IMPORT_PLAN (the plan as JSON) or IMPORT_PLAN_FILE (a path)');
  // Also checked at synth; repeated here for plans deployed by other means.
  const coverage = masterTokenCoverageProblem(referencedSecrets(plan).templatePrefixes, settings.MASTER_TOKEN_SECRET_ID);
  if (coverage) throw new ImportError('PLAN_INVALID', 'plan', coverage);
  return { ...settings, plan };
}
