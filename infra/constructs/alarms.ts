import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  Metric,
  SingleValueWidget,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AnyPrincipal, Effect, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { FilterPattern, type ILogGroup, MetricFilter } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC_COMPONENT, METRICS_NAMESPACE, TRIGGER_METRIC as TRIGGER_METRIC_NAMES, WORKER_METRIC } from '../../shared/names.js';

/**
 * A key policy statement denying kms:CreateGrant to anyone but AWS services acting for an AWS
 * resource (Control Tower CT.KMS.PR.3): nobody can hand out use of the key through a grant.
 * Neither CloudWatch/SNS (GenerateDataKey/Decrypt) nor CloudWatch Logs need grants.
 */
export function limitGrantsToAwsServices(key: Key): void {
  key.addToResourcePolicy(
    new PolicyStatement({
      sid: 'CreateGrantOnlyForAwsServices',
      effect: Effect.DENY,
      principals: [new AnyPrincipal()],
      actions: ['kms:CreateGrant'],
      resources: ['*'],
      conditions: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
    }),
  );
}

/** Namespace and dimension of the trigger's EMF metric (functions/post-confirmation/trigger.ts); the names are shared/names.ts's. */
export const TRIGGER_METRIC = {
  namespace: METRICS_NAMESPACE,
  name: TRIGGER_METRIC_NAMES.enqueueFailed,
  dimensions: { component: METRIC_COMPONENT.trigger },
} as const;

/**
 * The worker's EMF outcome counts (Powertools Metrics): namespace METRICS_NAMESPACE, dimensions
 * `service` (POWERTOOLS_SERVICE_NAME, which the stack sets to its own name, so that two stacks in
 * one account and region never add up) and `component`.
 */
export const WORKER_METRICS = {
  namespace: METRICS_NAMESPACE,
  component: METRIC_COMPONENT.worker,
  names: [WORKER_METRIC.imported, WORKER_METRIC.alreadyImported, WORKER_METRIC.retried, WORKER_METRIC.deadLettered, WORKER_METRIC.deferred],
} as const;

export interface ImportAlarmsProps {
  /** The stack's name: alarm and dashboard names, and the `service` dimension of the worker's metrics. */
  stackName: string;
  queue: IQueue;
  deadLetterQueue: IQueue;
  worker: IFunction;
  postConfirmation: IFunction;
  /** The trigger's log group: its EnqueueFailed records are counted per stack from here. */
  postConfirmationLogs: ILogGroup;
  oldestMessageAlarmAge: Duration;
  alarmEmail?: string | undefined;
}

/**
 * Alarms on what needs an operator, all notifying one SNS topic:
 * - DLQ depth > 0: a user could not be imported (the message carries the reason);
 * - worker errors: crashes, timeouts, bad configuration at cold start (record failures are
 *   partial batch responses, not errors, so this stays quiet on ordinary retries);
 * - age of the oldest message on the import queue: the worker is not keeping up or not running;
 * - trigger errors and the trigger's EnqueueFailed metric: sign-ups that did not reach the queue
 *   (run `reconcile`).
 *
 * The topic is encrypted with a customer managed key: CloudWatch cannot publish to a topic
 * encrypted with the AWS managed `aws/sns` key (its key policy cannot grant CloudWatch).
 */
export class ImportAlarms extends Construct {
  readonly topic: Topic;
  readonly key: Key;
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: ImportAlarmsProps) {
    super(scope, id);
    const stack = Stack.of(this);

    this.key = new Key(this, 'TopicKey', {
      description: 'Encrypts the tray-auth-import alarm topic',
      enableKeyRotation: true,
      // It only encrypts alarm notifications in transit through SNS: nothing to keep after the stack.
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    // Key policies name the key itself as "*". CloudWatch encrypts the notifications it publishes.
    // Only on behalf of this account's alarms (confused deputy), with the same conditions as the
    // topic policy: the SNS developer guide ("Enable compatibility between event sources from AWS
    // services and encrypted topics") documents aws:SourceAccount + aws:SourceArn in this key
    // policy statement for service event sources such as CloudWatch (EventBridge is the exception
    // that does not send them; it is not used here).
    const thisAccountsAlarms = {
      StringEquals: { 'aws:SourceAccount': stack.account },
      ArnLike: {
        'aws:SourceArn': stack.formatArn({
          service: 'cloudwatch',
          resource: 'alarm',
          resourceName: '*',
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      },
    };
    this.key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublishToEncryptedTopic',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: thisAccountsAlarms,
      }),
    );

    limitGrantsToAwsServices(this.key);

    this.topic = new Topic(this, 'Topic', {
      displayName: 'tray-auth-import alarms',
      masterKey: this.key,
      enforceSSL: true,
    });
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccount',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: thisAccountsAlarms,
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));

    const action = new SnsAction(this.topic);
    const alarm = (
      alarmId: string,
      description: string,
      metric: IMetric,
      threshold: number,
      comparison = ComparisonOperator.GREATER_THAN_THRESHOLD,
    ) => {
      const created = new Alarm(this, alarmId, {
        // Named after the stack: two stacks in one account and region never share (or confuse) an alarm.
        alarmName: `${props.stackName}-${alarmId}`,
        alarmDescription: description,
        metric,
        threshold,
        comparisonOperator: comparison,
        evaluationPeriods: 1,
        // Idle queues and functions stop reporting: no data means nothing is wrong.
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(action);
      this.alarms.push(created);
      return created;
    };

    const dlqAlarm = alarm(
      'DeadLetterQueueNotEmpty',
      'A user could not be imported: read the reason on the DLQ message (ErrorCode/ErrorReason attributes), fix the cause, redrive. An OK notification follows when the DLQ is empty again.',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      0,
    );
    // Operators who handled the alarm learn that the DLQ is empty again without polling it.
    dlqAlarm.addOkAction(action);
    alarm(
      'WorkerErrors',
      'The import worker failed as a whole (crash, timeout or invalid configuration at cold start); record failures are retried, this is not.',
      props.worker.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      0,
    );
    alarm(
      'OldestMessageAge',
      `The oldest message on the import queue is older than ${props.oldestMessageAlarmAge.toSeconds()} s: the worker is not keeping up or not running.`,
      props.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: 'Maximum' }),
      props.oldestMessageAlarmAge.toSeconds(),
    );
    alarm(
      'PostConfirmationErrors',
      'The post-confirmation trigger failed: sign-ups see an error and are not enqueued; run `reconcile` after fixing.',
      props.postConfirmation.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      0,
    );
    // The trigger's EMF metric has no per-stack dimension (namespace METRICS_NAMESPACE, component only):
    // two stacks would add up. Counted instead from this stack's own trigger log group.
    const enqueueFailed = new MetricFilter(this, 'EnqueueFailedFilter', {
      logGroup: props.postConfirmationLogs,
      filterPattern: FilterPattern.numberValue(`$.${TRIGGER_METRIC.name}`, '>=', 1),
      metricNamespace: `${TRIGGER_METRIC.namespace}/${props.stackName}`,
      metricName: TRIGGER_METRIC.name,
      metricValue: `$.${TRIGGER_METRIC.name}`,
      defaultValue: 0,
    });
    const enqueueFailedMetric = enqueueFailed.metric({ period: Duration.minutes(5), statistic: 'Sum' });
    alarm(
      'SignUpsNotEnqueued',
      'The post-confirmation trigger could not enqueue sign-ups (they are confirmed in Cognito but not queued): run `reconcile`.',
      enqueueFailedMetric,
      0,
    );

    this.dashboard = this.buildDashboard(props, enqueueFailedMetric);
  }

  private buildDashboard(props: ImportAlarmsProps, enqueueFailed: IMetric): Dashboard {
    const workerMetric = (name: (typeof WORKER_METRICS.names)[number], label: string) =>
      new Metric({
        namespace: WORKER_METRICS.namespace,
        metricName: name,
        dimensionsMap: { service: props.stackName, component: WORKER_METRICS.component },
        period: Duration.minutes(5),
        statistic: 'Sum',
        label,
      });
    const trayCallMetric = (statistic: string, label: string) =>
      new Metric({
        namespace: WORKER_METRICS.namespace,
        metricName: WORKER_METRIC.trayCallMs,
        dimensionsMap: { service: props.stackName, component: WORKER_METRICS.component },
        period: Duration.minutes(5),
        statistic,
        label,
      });
    const dashboard = new Dashboard(this, 'Dashboard', { dashboardName: `${props.stackName}-imports` });
    dashboard.addWidgets(
      new TextWidget({
        markdown: `# ${props.stackName}: Cognito → Tray imports\nAlarms notify the SNS topic. Runbooks: docs/operators.md (\`dlq list\`, \`redrive\`, \`reconcile\`).`,
        width: 24,
        height: 2,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Imports',
        left: [
          workerMetric(WORKER_METRIC.imported, 'imported'),
          workerMetric(WORKER_METRIC.alreadyImported, 'already imported (no Tray call)'),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Retries and dead letters',
        left: [
          workerMetric(WORKER_METRIC.retried, 'retried'),
          workerMetric(WORKER_METRIC.deadLettered, 'dead-lettered by the worker'),
          // Records an invocation could not finish before its deadline, handed back unstarted (not an attempt):
          // many of them mean the batch does not fit the timeout at the invocation's share of the budget.
          workerMetric(WORKER_METRIC.deferred, 'handed back unstarted'),
        ],
        right: [enqueueFailed],
        width: 8,
      }),
      new SingleValueWidget({
        title: 'Dead-letter queue',
        metrics: [
          props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: Duration.minutes(1),
            statistic: 'Maximum',
            label: 'messages in the DLQ',
          }),
        ],
        width: 8,
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Queue',
        left: [
          props.queue.metricApproximateAgeOfOldestMessage({
            period: Duration.minutes(5),
            statistic: 'Maximum',
            label: 'age of the oldest message (s)',
          }),
        ],
        right: [
          props.queue.metricApproximateNumberOfMessagesVisible({
            period: Duration.minutes(5),
            statistic: 'Maximum',
            label: 'messages waiting',
          }),
        ],
        width: 12,
      }),
      // Tray's latency as the worker sees it (TrayCallMs, one value per call): what the pacing
      // keeps rate × latency calls in flight for; next to the worker's duration, errors and throttles.
      new GraphWidget({
        title: 'Tray latency, worker duration and errors',
        left: [
          trayCallMetric('p50', 'Tray call p50 (ms)'),
          trayCallMetric('p99', 'Tray call p99 (ms)'),
          props.worker.metricDuration({ period: Duration.minutes(5), statistic: 'p50', label: 'invocation p50 (ms)' }),
        ],
        right: [
          props.worker.metricErrors({ period: Duration.minutes(5), statistic: 'Sum', label: 'errors' }),
          props.worker.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum', label: 'throttles' }),
        ],
        width: 12,
      }),
    );
    return dashboard;
  }
}
