import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENTRIES } from '../../functions/entries.js';
import { BundledFunction } from './lambda-function.js';

/**
 * `reconcile` on a schedule (EventBridge → functions/reconcile/handler.ts): enqueues users the
 * trigger could not enqueue (they are confirmed in Cognito but absent from the ledger) and users
 * stuck without a lease, as the CLI command does without --include-failed. Off unless the deploy
 * config sets `reconcileSchedule`. Least privilege: ListUsers on the one pool, Query on the ledger
 * (reconcile reads a pool's statuses), SendMessage on the import queue.
 */
export interface ScheduledReconcileProps {
  /** An EventBridge schedule expression: "rate(1 hour)", "cron(0 3 * * ? *)". */
  schedule: string;
  userPoolId: string;
  /** The pool's region (an existing pool's id starts with it); the stack's region otherwise. */
  userPoolRegion?: string | undefined;
  queue: IQueue;
  table: ITable;
  messageAttributes: string;
  logRetention: RetentionDays;
  topic: ITopic;
}

export class ScheduledReconcile extends Construct {
  readonly function: BundledFunction;
  readonly rule: Rule;

  constructor(scope: Construct, id: string, props: ScheduledReconcileProps) {
    super(scope, id);
    const stack = Stack.of(this);

    this.function = new BundledFunction(this, 'Reconcile', {
      entry: ENTRIES.reconcile,
      description: 'Scheduled reconcile: re-enqueues confirmed users the pipeline lost',
      // Reconcile pages through the whole pool; it stops 30 s before this and the next run finishes.
      timeout: Duration.minutes(15),
      memorySize: 512,
      logRetention: props.logRetention,
      environment: {
        USER_POOL_ID: props.userPoolId,
        QUEUE_URL: props.queue.queueUrl,
        LEDGER_TABLE: props.table.tableName,
        MESSAGE_ATTRIBUTES: props.messageAttributes,
      },
    });
    const poolArn = stack.formatArn({
      service: 'cognito-idp',
      ...(props.userPoolRegion ? { region: props.userPoolRegion } : {}),
      resource: 'userpool',
      resourceName: props.userPoolId,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const role = this.function.role;
    role.addToPrincipalPolicy(new PolicyStatement({ sid: 'ListPoolUsers', actions: ['cognito-idp:ListUsers'], resources: [poolArn] }));
    role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'ReadLedgerStatuses', actions: ['dynamodb:Query'], resources: [props.table.tableArn] }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'EnqueueLostUsers', actions: ['sqs:SendMessage'], resources: [props.queue.queueArn] }),
    );

    this.rule = new Rule(this, 'Schedule', {
      description: 'Runs reconcile on the configured schedule (reconcileSchedule)',
      schedule: Schedule.expression(props.schedule),
      // One attempt: a failed run is alarmed on, and the next scheduled run repeats it safely.
      targets: [new LambdaFunction(this.function.fn, { retryAttempts: 0 })],
    });

    const alarm = new Alarm(this, 'ReconcileErrors', {
      alarmDescription: 'The scheduled reconcile failed or could not enqueue some users: read its log; the next run retries.',
      metric: this.function.fn.metricErrors({ period: Duration.hours(1), statistic: 'Sum' }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new SnsAction(props.topic));
  }
}
