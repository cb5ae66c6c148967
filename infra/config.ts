import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import * as z from 'zod';
import { WorkerEnvSchema } from '../functions/import-worker/settings.js';
import { TRAY_ENABLE_DELAY_MS } from '../shared/import-workflow.js';
import { DEFAULT_STACK_NAME } from '../shared/names.js';
import { type ImportPlan, loadPlanFile, parsePlan, requiredAttributes } from '../shared/plan.js';
import { CLI_RATE_PER_SECOND, DEFAULT_TRAY_BUDGET_PER_SECOND, TRAY_RATE_LIMIT_PER_SECOND, workerShare } from '../shared/tray/pacer.js';
import { formatIssues } from '../shared/validation.js';
import { DEFAULT_CONFIG_FILE, EXAMPLE_CONFIG_FILE, repoPath } from './paths.js';

/**
 * The deployment configuration: one JSON file (default `tray-auth-import.config.json` at the
 * repository root, `-c config=path` to choose another, `config.example.json` when neither exists)
 * naming the import plan and the few settings an operator chooses. Everything is validated before
 * a single construct is created, and every error names the JSON path and what to write instead.
 */

/** Values CloudWatch Logs accepts for a retention period. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** Lambda caps the whole environment (keys and values) at 4 KB. */
export const LAMBDA_ENV_LIMIT_BYTES = 4096;

const int = (min: number, max: number, fallback: number, hint: string) =>
  z
    .number({ error: `a whole number from ${min} to ${max} (${hint})` })
    .int({ error: `must be a whole number (${hint})` })
    .min(min, { error: `must be at least ${min} (${hint})` })
    .max(max, { error: `must be at most ${max} (${hint})` })
    .default(fallback);

const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
/** A complete secret ARN ends with "-" and the 6 random characters Secrets Manager appends. */
const SECRET_COMPLETE_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;
const USER_POOL_ID = /^([a-z]{2}(?:-[a-z]+)+-\d)_[0-9A-Za-z]+$/;

const MasterTokenSecret = z
  .strictObject({
    name: z.string().regex(SECRET_NAME, { error: 'a Secrets Manager secret name such as "tray-auth-import/master-token"' }).optional(),
    arn: z
      .string()
      .regex(SECRET_COMPLETE_ARN, {
        error: 'the secret\'s complete ARN, ending in "-" and 6 characters (copy it from `aws secretsmanager describe-secret`)',
      })
      .optional(),
  })
  .superRefine((secret, ctx) => {
    if ((secret.name === undefined) === (secret.arn === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'set exactly one of "name" (e.g. "tray-auth-import/master-token") or "arn" (the complete secret ARN)',
      });
    }
  });

const CreateUserPool = z.strictObject({
  /** Users sign themselves up (the trigger's main case); false: administrators create them (then only backfill imports them). */
  selfSignUpEnabled: z.boolean().default(true),
  /** REQUIRED satisfies AwsSolutions-COG2; OPTIONAL (TOTP) lets each user opt in. */
  mfa: z.enum(['OFF', 'OPTIONAL', 'REQUIRED'], { error: 'must be "OFF", "OPTIONAL" or "REQUIRED"' }).default('OPTIONAL'),
  /** PLUS (billed per monthly active user) turns on threat protection and satisfies AwsSolutions-COG8. */
  featurePlan: z.enum(['ESSENTIALS', 'PLUS'], { error: 'must be "ESSENTIALS" or "PLUS"' }).default('ESSENTIALS'),
  /** Custom attributes to declare, without the "custom:" prefix; every "custom:..." attribute the plan reads must be listed. */
  customAttributes: z
    .array(z.string().regex(/^[A-Za-z0-9_]{1,20}$/, { error: 'a custom attribute name without "custom:", 1-20 letters, digits or "_"' }))
    .default([]),
});

const UserPoolChoice = z
  .strictObject({
    existingUserPoolId: z.string().regex(USER_POOL_ID, { error: 'a Cognito user pool id such as "eu-west-1_AbCdEf123"' }).optional(),
    create: CreateUserPool.optional(),
  })
  .superRefine((pool, ctx) => {
    if ((pool.existingUserPoolId === undefined) === (pool.create === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'set exactly one of "existingUserPoolId" (deploy everything but the pool) or "create" (e.g. {} for the defaults)',
      });
    }
  });

export const DeployConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,59}$/, {
        error: 'a CloudFormation stack name: a letter, then up to 59 letters, digits or "-" (it also prefixes the queue names)',
      })
      .default(DEFAULT_STACK_NAME),
    /** Optional: pin the stack to an account/region; otherwise the CLI's credentials decide (CDK_DEFAULT_ACCOUNT/REGION). */
    account: z
      .string()
      .regex(/^\d{12}$/, { error: 'a 12-digit AWS account id' })
      .optional(),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { error: 'an AWS region such as "eu-west-1"' })
      .optional(),
    /** The import plan: a path relative to this config file, or the plan itself. */
    planFile: z.string().min(1).optional(),
    plan: z.unknown().optional(),
    masterTokenSecret: MasterTokenSecret,
    userPool: UserPoolChoice,
    /** Deliveries before SQS moves a message to the DLQ; the worker dead-letters with a reason on the last one. */
    maxReceiveCount: int(2, 100, 5, 'AWS suggests 5 or more'),
    /** Long enough for a full batch at the invocation's share of the budget (checked below). */
    workerTimeoutSeconds: int(10, 900, 180, 'the queue visibility timeout is 6 times this'),
    workerMemoryMb: int(128, 10240, 512, 'Lambda memory; CPU grows with it'),
    /**
     * SQS records per invocation. The worker paces each invocation to its share of the budget and
     * starts records while its pacer has slots, so a batch is not imported one by one; but each
     * batch ends with a tail (its last users' call chains) during which the invocation cannot use
     * its share: bigger batches lose less to it.
     */
    batchSize: int(1, 10_000, 150, 'records per worker invocation'),
    /** How long the event source gathers records before invoking (AWS requires ≥ 1 s when batchSize > 10). */
    maxBatchingWindowSeconds: int(0, 300, 5, 'seconds the event source waits to fill a batch'),
    /** Concurrent worker invocations the SQS event source may run (AWS minimum: 2). */
    maxConcurrency: int(2, 1000, 2, 'concurrent worker invocations'),
    /** Tray's documented sustained limit per partner. */
    trayRateLimitPerSecond: int(1, 1000, TRAY_RATE_LIMIT_PER_SECOND, 'Tray requests per second for the whole partner account'),
    /**
     * Tray requests per second this deployment may use: the worker fleet plus the operators' CLI
     * reserve (0.5/s). Environments sharing one partner account must split Tray's limit between them.
     */
    trayBudgetPerSecond: z
      .number({
        error: `Tray requests per second for this deployment (workers + the CLI's ${CLI_RATE_PER_SECOND}/s), e.g. ${DEFAULT_TRAY_BUDGET_PER_SECOND}`,
      })
      .gt(CLI_RATE_PER_SECOND, {
        error: `must be above the CLI's reserve of ${CLI_RATE_PER_SECOND}/s, or the workers get nothing: e.g. ${DEFAULT_TRAY_BUDGET_PER_SECOND}`,
      })
      .default(DEFAULT_TRAY_BUDGET_PER_SECOND),
    trayTimeoutMs: int(1000, 60_000, 10_000, 'timeout of one Tray call in ms'),
    retryBaseSeconds: int(1, 43_200, 30, 'first retry delay in seconds'),
    retryMaxSeconds: int(1, 43_200, 900, 'longest retry delay in seconds (SQS allows 12 hours)'),
    masterTokenCacheMs: int(0, 86_400_000, 300_000, 'how long the master token is cached; a rotated token is read after at most this long'),
    enqueueTimeoutMs: int(200, 4000, 2000, "bound on the trigger's SQS send; Cognito waits about 5 s"),
    alarmEmail: z.email({ error: 'an e-mail address for alarm notifications' }).optional(),
    oldestMessageAlarmSeconds: int(60, 1_209_600, 3600, 'age of the oldest queued message that raises the alarm'),
    /** Alarm when more users than this are imported within one hour (none when unset); nothing is dropped. */
    /** Hard ceiling of new Tray users per pool and hour (MAX_IMPORTS_PER_HOUR): beyond it users wait in the queue; the ImportVolume alarm fires. */
    maxImportsPerHour: z
      .number({
        error: 'a whole number: the most new Tray users per hour; beyond it users wait in the queue and the ImportVolume alarm fires',
      })
      .int()
      .positive()
      .optional(),
    /** Runs `reconcile` on this EventBridge schedule ("rate(1 hour)", "cron(...)"); off when unset. */
    reconcileSchedule: z
      .string()
      .regex(/^(rate|cron)\(.+\)$/, { error: 'an EventBridge schedule expression such as "rate(1 hour)" or "cron(0 3 * * ? *)"' })
      .optional(),
    logRetentionDays: z
      .number()
      .refine((n) => (LOG_RETENTION_DAYS as readonly number[]).includes(n), {
        error: `one of ${LOG_RETENTION_DAYS.join(', ')} (CloudWatch Logs retention values)`,
      })
      .default(90),
    trayGraphqlUrl: z.url({ protocol: /^https$/, error: "an https URL overriding the plan's Tray endpoint" }).optional(),
    /**
     * Tray's expired-auth webhook (functions/tray-webhook): a Lambda function URL without IAM auth
     * (Tray cannot sign; the function checks a token). Off for organisations enforcing AWS Control
     * Tower's proactive controls on Lambda (lambda_function_url_auth_check, lambda_function_public_access_prohibited_check); expiring auths are then
     * only seen when an import or rotation fails.
     */
    trayWebhook: z.boolean({ error: "true to receive Tray's expired-auth notifications on a function URL" }).default(true),
    /** Encrypt both functions' log groups with a customer managed KMS key (Control Tower CT.CLOUDWATCH.PR.3). */
    encryptLogs: z.boolean({ error: 'true to encrypt the log groups with a customer managed KMS key' }).default(false),
    /**
     * Run both functions in your VPC (Control Tower CT.LAMBDA.PR.3). The subnets need a route to
     * SQS, DynamoDB, Secrets Manager (VPC endpoints or NAT) and, for the worker, to Tray (NAT).
     */
    vpc: z
      .strictObject({
        vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, { error: 'a VPC id such as "vpc-0123456789abcdef0"' }),
        subnetIds: z
          .array(z.string().regex(/^subnet-[0-9a-f]+$/, { error: 'a subnet id such as "subnet-0123456789abcdef0"' }))
          .min(1, { error: 'at least one private subnet' }),
        securityGroupIds: z
          .array(z.string().regex(/^sg-[0-9a-f]+$/, { error: 'a security group id such as "sg-0123456789abcdef0"' }))
          .min(1, { error: 'at least one security group allowing HTTPS out' }),
      })
      .optional(),
  })
  .superRefine((config, ctx) => {
    if ((config.planFile === undefined) === (config.plan === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'set exactly one of "planFile" (a path relative to this file) or "plan" (the import plan itself)',
      });
    }
    if (config.trayBudgetPerSecond > config.trayRateLimitPerSecond) {
      ctx.addIssue({
        code: 'custom',
        path: ['trayBudgetPerSecond'],
        message:
          `${config.trayBudgetPerSecond}/s is above Tray's limit of ${config.trayRateLimitPerSecond}/s per partner account: ` +
          `use at most ${config.trayRateLimitPerSecond} (less if other environments share the account: their budgets must add up to the limit)`,
      });
    } else if (workerRatePerSecond(config) <= 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxConcurrency'],
        message: `${config.maxConcurrency} invocations sharing ${config.trayBudgetPerSecond - CLI_RATE_PER_SECOND}/s leave each less than 0.01 call/s: lower maxConcurrency or raise trayBudgetPerSecond`,
      });
    } else if (!WorkerEnvSchema.shape.TRAY_RATE_PER_SECOND.safeParse(String(workerRatePerSecond(config))).success) {
      // The worker refuses such a share at cold start (shared/config.ts): better said at synth.
      ctx.addIssue({
        code: 'custom',
        path: ['maxConcurrency'],
        message: `each of ${config.maxConcurrency} invocations would get ${workerRatePerSecond(config)} Tray calls/s, more than the worker accepts (TRAY_RATE_PER_SECOND): raise maxConcurrency so that each share is smaller`,
      });
    }
    if (config.batchSize > 10 && config.maxBatchingWindowSeconds < 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxBatchingWindowSeconds'],
        message: `AWS requires a batching window of at least 1 s when batchSize (${config.batchSize}) is above 10: set it to 1 or more, or batchSize to 10 or less`,
      });
    }
    if (config.workerTimeoutSeconds * 1000 < config.trayTimeoutMs + 5000) {
      ctx.addIssue({
        code: 'custom',
        path: ['workerTimeoutSeconds'],
        message: `must leave room for at least one Tray call (trayTimeoutMs ${config.trayTimeoutMs}) plus the worker's 3 s safety margin: use ${Math.ceil((config.trayTimeoutMs + 5000) / 1000)} or more`,
      });
    }
    if (config.retryMaxSeconds < config.retryBaseSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['retryMaxSeconds'],
        message: `must be at least retryBaseSeconds (${config.retryBaseSeconds})`,
      });
    }
  });

export type DeployConfig = z.infer<typeof DeployConfigSchema>;
export type DeployConfigInput = z.input<typeof DeployConfigSchema>;

/**
 * The Tray calls per second one worker invocation may make (its env TRAY_RATE_PER_SECOND): the
 * budget less the CLI's reserve, split evenly over the `maxConcurrency` invocations the event
 * source may run at once. Rounded down to 2 decimals, so the fleet never exceeds the budget.
 */
export function workerRatePerSecond(config: Pick<DeployConfig, 'trayBudgetPerSecond' | 'maxConcurrency'>): number {
  return Math.floor(workerShare(config.trayBudgetPerSecond, config.maxConcurrency) * 100) / 100;
}

/** Tray calls a fresh user costs: 4, plus one per auth of the plan (see shared/import-workflow.ts). */
export function trayCallsPerUser(plan: Pick<ImportPlan, 'auths'>): number {
  return 4 + plan.auths.length;
}

/** The worker's margin before Lambda's deadline (SAFETY_MARGIN_MS in shared/import-worker.ts, not exported). */
export const WORKER_SAFETY_MS = 3000;

/**
 * Seconds one invocation needs for a full batch: every call of every user at the invocation's
 * paced rate, plus Tray's wait before enabling the last user, one Tray call's timeout (the last
 * call may hang that long) and the worker's safety margin. The worker hands back records it
 * cannot finish before its deadline (new messages, not counted as attempts), so a batch that
 * does not fit is not lost — but every batch would then be cut short and re-sent: refused at synth.
 */
export function fullBatchSeconds(
  config: Pick<DeployConfig, 'batchSize' | 'trayBudgetPerSecond' | 'maxConcurrency' | 'trayTimeoutMs'>,
  plan: Pick<ImportPlan, 'auths'>,
): number {
  const pacedSeconds = (config.batchSize * trayCallsPerUser(plan)) / workerRatePerSecond(config);
  return pacedSeconds + (TRAY_ENABLE_DELAY_MS + config.trayTimeoutMs + WORKER_SAFETY_MS) / 1000;
}

export class DeployConfigError extends Error {
  override readonly name = 'DeployConfigError';
}

export interface LoadedConfig {
  /** Absolute path of the config file read, or a description for configs given in code. */
  origin: string;
  /** True when the committed example was used because no config file was named or found. */
  isExample: boolean;
  config: DeployConfig;
  plan: ImportPlan;
}

/**
 * Which file to read: `-c config=path` (relative to the cwd), else `tray-auth-import.config.json`
 * at the repository root, else the committed `config.example.json`.
 */
export function resolveConfigPath(contextValue: unknown, cwd = process.cwd()): { path: string; isExample: boolean } {
  if (contextValue !== undefined && contextValue !== null && contextValue !== '') {
    if (typeof contextValue !== 'string')
      throw new DeployConfigError('the "config" context value must be a file path, e.g. -c config=prod.config.json');
    const path = isAbsolute(contextValue) ? contextValue : resolve(cwd, contextValue);
    if (!existsSync(path)) throw new DeployConfigError(`config file ${path} (from -c config=${contextValue}) does not exist`);
    return { path, isExample: false };
  }
  const preferred = repoPath(DEFAULT_CONFIG_FILE);
  if (existsSync(preferred)) return { path: preferred, isExample: false };
  return { path: repoPath(EXAMPLE_CONFIG_FILE), isExample: true };
}

export function loadConfigFile(path: string, isExample = false): LoadedConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new DeployConfigError(`cannot read the deploy config ${path}: ${(e as Error).message}`);
  }
  return { ...parseDeployConfig(raw, path, dirname(path)), isExample };
}

/**
 * Validates a config object and the plan it names. A plan error is rethrown as is (the plan's
 * own PLAN_INVALID message with JSON paths), so `cdk synth` shows exactly what the CLI would.
 */
export function parseDeployConfig(raw: unknown, origin = 'deploy config', baseDir = process.cwd()): LoadedConfig {
  const parsed = DeployConfigSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new DeployConfigError(`${origin} is invalid: ${formatIssues(parsed.error.issues)}`);
  const config = parsed.data;
  const plan =
    config.planFile !== undefined
      ? loadPlanFile(isAbsolute(config.planFile) ? config.planFile : resolve(baseDir, config.planFile))
      : parsePlan(config.plan, `${origin} → "plan"`);
  checkPlanAgainstConfig(config, plan, origin);
  checkTiming(config, plan, origin);
  return { origin, isExample: false, config, plan };
}

function checkPlanAgainstConfig(config: DeployConfig, plan: ImportPlan, origin: string): void {
  const declared = new Set(config.userPool.create?.customAttributes ?? []);
  if (config.userPool.create) {
    const missing = requiredAttributes(plan)
      .filter((a) => a.startsWith('custom:'))
      .filter((a) => !declared.has(a.slice('custom:'.length)));
    if (missing.length > 0) {
      throw new DeployConfigError(
        `${origin} is invalid: $.userPool.create.customAttributes: the plan reads ${missing.map((a) => `"${a}"`).join(', ')}; ` +
          `add ${missing.map((a) => `"${a.slice('custom:'.length)}"`).join(', ')} so that the new pool can hold ${missing.length > 1 ? 'them' : 'it'}`,
      );
    }
  }
  const region = config.region;
  const poolRegion = config.userPool.existingUserPoolId?.match(USER_POOL_ID)?.[1];
  if (region && poolRegion && region !== poolRegion) {
    throw new DeployConfigError(
      `${origin} is invalid: $.userPool.existingUserPoolId: the pool is in ${poolRegion} but the stack deploys to ${region}; Cognito triggers must be in the pool's region`,
    );
  }
}

/**
 * A full batch must fit one invocation (see fullBatchSeconds). Needs the plan (its auths), hence
 * here and not in the schema. A Lambda payload is at most 6 MB and an SQS message 256 KB, so
 * 10000 records could in theory exceed it; this pipeline's messages are a few hundred bytes
 * (a sub and the plan's attributes), so 10000 of them stay far below: not checked.
 */
function checkTiming(config: DeployConfig, plan: ImportPlan, origin: string): void {
  const needed = fullBatchSeconds(config, plan);
  if (needed <= config.workerTimeoutSeconds) return;
  const rate = workerRatePerSecond(config);
  const calls = trayCallsPerUser(plan);
  const fixedSeconds = (TRAY_ENABLE_DELAY_MS + config.trayTimeoutMs + WORKER_SAFETY_MS) / 1000;
  const largestBatch = Math.floor(((config.workerTimeoutSeconds - fixedSeconds) * rate) / calls);
  const fixes = [
    largestBatch >= 1 ? `lower batchSize to ${largestBatch} or less` : undefined,
    Math.ceil(needed) <= 900 ? `raise workerTimeoutSeconds to ${Math.ceil(needed)} or more` : undefined,
    'or give each invocation a larger share (trayBudgetPerSecond up, maxConcurrency down)',
  ].filter(Boolean);
  throw new DeployConfigError(
    `${origin} is invalid: $.workerTimeoutSeconds: a full batch of ${config.batchSize} users × ${calls} Tray calls at ${rate} calls/s ` +
      `(the invocation's share: (trayBudgetPerSecond ${config.trayBudgetPerSecond} − ${CLI_RATE_PER_SECOND}) / maxConcurrency ${config.maxConcurrency}) ` +
      `takes ${Math.ceil(needed)} s with the 2 s enable wait, one trayTimeoutMs and the 3 s safety margin, more than the ${config.workerTimeoutSeconds} s timeout: ${fixes.join(', ')}`,
  );
}

/** The region encoded in a user pool id ("eu-west-1_AbC" → "eu-west-1"). */
export function userPoolRegion(userPoolId: string): string | undefined {
  return userPoolId.match(USER_POOL_ID)?.[1];
}
