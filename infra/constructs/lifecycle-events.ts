import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { type IQueue, Queue, QueueEncryption, RedrivePermission } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENTRIES } from '../../functions/entries.js';
import { COGNITO_DELETE_EVENTS, COGNITO_EVENT_SOURCE } from '../../functions/lifecycle-events/cognito.js';
import { LIFECYCLE_EVENTS_METRIC, METRIC_COMPONENT, METRICS_NAMESPACE } from '../../shared/names.js';
import { BundledFunction, type BundledFunctionProps } from './lambda-function.js';

/**
 * AWS events that start a lifecycle flow → functions/lifecycle-events → lifecycle messages on the
 * import queue. Cognito has no post-delete trigger, so a deletion is caught as the CloudTrail
 * record of `AdminDeleteUser` / `DeleteUser`, which CloudTrail puts on the account's default event
 * bus only when a trail logs the account's management events in this region (see
 * docs/operators.md). Other flows add their own rule targeting `function` (e.g. Secrets Manager
 * changes), and a route in the handler.
 *
 * Nothing is lost silently: a failed delivery to the function (rule target DLQ) and an event the
 * function failed on after Lambda's retries (the function's dead-letter queue) both land in `deadLetterQueue`,
 * which is alarmed on, as is every deletion the function could not resolve to a sub.
 * Least privilege: SendMessage on the import queue and Query on the ledger, nothing else.
 */
export interface LifecycleEventsProps {
  stackName: string;
  userPoolId: string;
  queue: IQueue;
  table: ITable;
  logRetention: RetentionDays;
  logKey?: IKey | undefined;
  vpc?: BundledFunctionProps['vpc'];
  topic: ITopic;
}

export class LifecycleEvents extends Construct {
  readonly function: BundledFunction;
  readonly deadLetterQueue: Queue;
  readonly cognitoDeletes: Rule;

  constructor(scope: Construct, id: string, props: LifecycleEventsProps) {
    super(scope, id);

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      queueName: `${props.stackName}-lifecycle-events-dlq`,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      // The only record of a deletion that was not offboarded: kept when the stack is deleted.
      removalPolicy: RemovalPolicy.RETAIN,
      // Marks it as a dead-letter queue (Control Tower CT.SQS.PR.1 recognises one by this policy).
      // EventBridge and Lambda send to it directly; no source queue redrives into it.
      redriveAllowPolicy: { redrivePermission: RedrivePermission.ALLOW_ALL },
    });
    this.function = new BundledFunction(this, 'Function', {
      entry: ENTRIES.lifecycleEvents,
      description: 'Lifecycle events: turns AWS events (Cognito user deletions) into lifecycle messages on the import queue',
      // A shared secret's change fans out rotate messages to every enabled user, paced to the Tray
      // budget; the function stops before this and EventBridge's retry continues where it stopped.
      timeout: Duration.minutes(15),
      memorySize: 256,
      logRetention: props.logRetention,
      logKey: props.logKey,
      vpc: props.vpc,
      environment: {
        QUEUE_URL: props.queue.queueUrl,
        LEDGER_TABLE: props.table.tableName,
        USER_POOL_ID: props.userPoolId,
        POWERTOOLS_SERVICE_NAME: props.stackName,
      },
    });
    const role = this.function.role;
    role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'EnqueueLifecycleMessages', actions: ['sqs:SendMessage'], resources: [props.queue.queueArn] }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'FindDeletedUsersInLedger', actions: ['dynamodb:Query'], resources: [props.table.tableArn] }),
    );
    // An event the function threw on is retried twice by Lambda (asynchronous invocation), then
    // kept here. The function's own dead-letter queue (not an on-failure destination): cdk-nag
    // recognises it as this queue's use.
    this.function.fn.configureAsyncInvoke({ retryAttempts: 2, maxEventAge: Duration.hours(6) });
    (this.function.fn.node.defaultChild as CfnFunction).deadLetterConfig = { targetArn: this.deadLetterQueue.queueArn };
    role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'KeepFailedEvents', actions: ['sqs:SendMessage'], resources: [this.deadLetterQueue.queueArn] }),
    );

    this.cognitoDeletes = new Rule(this, 'CognitoUserDeleted', {
      description: 'Cognito user deletions in the pool (CloudTrail management events) → offboarding',
      eventPattern: {
        source: [COGNITO_EVENT_SOURCE],
        detailType: ['AWS API Call via CloudTrail'],
        detail: {
          eventSource: ['cognito-idp.amazonaws.com'],
          eventName: [...COGNITO_DELETE_EVENTS],
          // A failed call deleted nobody.
          errorCode: [{ exists: false }],
          // AdminDeleteUser names the pool; DeleteUser (the user's own call, by access token) does
          // not, and the function keeps only users its ledger knows.
          $or: [{ requestParameters: { userPoolId: [props.userPoolId] } }, { eventName: ['DeleteUser'] }],
        },
      },
      targets: [
        new LambdaFunction(this.function.fn, { deadLetterQueue: this.deadLetterQueue, retryAttempts: 8, maxEventAge: Duration.hours(24) }),
      ],
    });

    const alarm = (alarmId: string, description: string, metric: Metric) =>
      new Alarm(this, alarmId, {
        alarmName: `${props.stackName}-${alarmId}`,
        alarmDescription: description,
        metric,
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }).addAlarmAction(new SnsAction(props.topic));
    alarm(
      'LifecycleEventsDeadLettered',
      'A lifecycle event (a Cognito user deletion) could not be processed: read the lifecycle-events DLQ, then run `offboard --deleted` (docs/operators.md).',
      this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
    );
    alarm(
      'OffboardUnresolved',
      'A deleted Cognito user could not be resolved to a sub: run `offboard --deleted` (docs/operators.md, "offboard: when a user is deleted").',
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName: LIFECYCLE_EVENTS_METRIC.offboardUnresolved,
        dimensionsMap: { service: props.stackName, component: METRIC_COMPONENT.lifecycleEvents },
        period: Duration.minutes(5),
        statistic: 'Sum',
      }),
    );
  }
}
