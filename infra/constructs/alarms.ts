import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Namespace and dimension of the trigger's EMF metric (functions/post-confirmation/trigger.ts). */
export const TRIGGER_METRIC = { namespace: 'TrayAuthImport', name: 'EnqueueFailed', dimensions: { component: 'post-confirmation' } } as const;

export interface ImportAlarmsProps {
  queue: IQueue;
  deadLetterQueue: IQueue;
  worker: IFunction;
  postConfirmation: IFunction;
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
      ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
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
    const alarm = (alarmId: string, description: string, metric: IMetric, threshold: number, comparison = ComparisonOperator.GREATER_THAN_THRESHOLD) => {
      const created = new Alarm(this, alarmId, {
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

    alarm(
      'DeadLetterQueueNotEmpty',
      'A user could not be imported: read the reason on the DLQ message (ErrorCode/ErrorReason attributes), fix the cause, redrive.',
      props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      0,
    );
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
    alarm(
      'SignUpsNotEnqueued',
      'The post-confirmation trigger could not enqueue sign-ups (they are confirmed in Cognito but not queued): run `reconcile`.',
      new Metric({ namespace: TRIGGER_METRIC.namespace, metricName: TRIGGER_METRIC.name, dimensionsMap: { ...TRIGGER_METRIC.dimensions }, period: Duration.minutes(5), statistic: 'Sum' }),
      0,
    );
  }
}
