/**
 * The names the deployed stack, the Lambda functions and the operators' CLI must agree on: the
 * service, the default stack, the stack's output ids and the CloudWatch metrics. A rename here is
 * a rename everywhere; a rename in only one place would leave an alarm watching a metric nobody
 * emits, or a CLI reading an output the stack no longer has.
 *
 * This module imports nothing, on purpose: the trigger's bundle includes it and must stay small.
 */

/** The project's name: Powertools' default service name, the stack's `project` tag. */
export const SERVICE_NAME = 'tray-auth-import';

/** The stack's name when the deployment configuration does not set one; the CLI's default --stack-name. */
export const DEFAULT_STACK_NAME = 'TrayAuthImport';

/** CloudWatch namespace of every custom metric (the worker's Powertools metrics, the trigger's EMF record). */
export const METRICS_NAMESPACE = 'TrayAuthImport';

/**
 * The `component` dimension of each function's metrics (and the `component` key of its logs).
 * The worker's metrics also carry `service`: the stack's name (its POWERTOOLS_SERVICE_NAME).
 */
export const METRIC_COMPONENT = {
  worker: 'import-worker',
  trigger: 'post-confirmation',
  lifecycleEvents: 'lifecycle-events',
  webhook: 'tray-webhook',
} as const;

/** What the import worker counts, per record outcome (Count), and the time of each Tray call (Milliseconds). */
export const WORKER_METRIC = {
  imported: 'Imported',
  alreadyImported: 'AlreadyImported',
  retried: 'Retried',
  deadLettered: 'DeadLettered',
  deferred: 'Deferred',
  /** The worker could not send a failed message to the DLQ (SQS's redrive will move it without a reason). */
  deadLetterFailed: 'DeadLetterFailed',
  trayCallMs: 'TrayCallMs',
} as const;

/** What the worker counts per lifecycle message done (Count; dimension `component` = import-worker). */
export const LIFECYCLE_METRIC = { offboard: 'Offboarded', rotate: 'Rotated', upgrade: 'Upgraded' } as const;

/** What the lifecycle-events function counts (Count; dimension `component` = lifecycle-events): a deleted Cognito user it could not resolve to a sub (runbook: `offboard --deleted`). */
export const LIFECYCLE_EVENTS_METRIC = { offboardUnresolved: 'OffboardUnresolved' } as const;
/**
 * What Tray's expired-auth webhook counts (Count; dimensions `service` = the stack's name and
 * `component` = tray-webhook): an auth about to expire that the company must renew (its source
 * has no newer value: alarmed), and a notification for a user or auth the ledger does not know.
 */
export const EXPIRY_METRIC = { authExpiring: 'AuthExpiring', unknown: 'ExpiringUnknown' } as const;

/** The trigger's one metric: a confirmed sign-up it could not enqueue. */
export const TRIGGER_METRIC = { enqueueFailed: 'EnqueueFailed' } as const;

/** Stack outputs the operators' CLI reads (CfnOutput ids: renaming one breaks deployed CLIs). */
export const STACK_OUTPUT_KEYS = [
  'QueueUrl',
  'QueueArn',
  'DeadLetterQueueUrl',
  'DeadLetterQueueArn',
  'LedgerTableName',
  'WorkerFunctionName',
  'PostConfirmationFunctionName',
  'PostConfirmationFunctionArn',
  'AlarmTopicArn',
  'UserPoolId',
  'MasterTokenSecretId',
  'TrayBudgetPerSecond',
  'TrayCallsPerUser',
  /** The expired-auth webhook's function URL (without its token) to paste into Tray's Embedded settings. */
  'TrayWebhookUrl',
] as const;
export type StackOutputKey = (typeof STACK_OUTPUT_KEYS)[number];

/** Stack outputs for people only (the console, `cdk deploy`'s summary); the CLI does not read them. */
export const INFO_OUTPUT_KEYS = ['LogsKeyArn', 'DashboardName', 'DetachTriggerCommand'] as const;
export type InfoOutputKey = (typeof INFO_OUTPUT_KEYS)[number];
