import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC_COMPONENT, METRICS_NAMESPACE, WORKER_METRIC } from '../../shared/names.js';

/**
 * Guards that make abnormal volume and lost reasons visible, on the alarm topic:
 * - DeadLetterFailed > 0: the worker could not send a failed message to the DLQ (the message stays
 *   on the queue and SQS's redrive will move it without a reason);
 * - Imported over one hour above `maxImportsPerHour` (when set): more users imported than the
 *   product expects, e.g. scripted sign-ups each importing a (billable) Tray user. Nothing is
 *   dropped or held back: the alarm is the guard, and an operator decides (disable the event
 *   source mapping to pause).
 * The DLQ is kept when the stack is deleted: it may hold the only record of users not imported.
 */
export interface ImportGuardsProps {
  /** The stack's name: the worker's `service` metric dimension (its POWERTOOLS_SERVICE_NAME) and the alarm names' prefix. */
  stackName: string;
  topic: ITopic;
  deadLetterQueue: Queue;
  maxImportsPerHour?: number | undefined;
}

/**
 * The fixed dimension of the worker's Powertools metrics. The other, `service`, is the stack's name
 * (the worker's POWERTOOLS_SERVICE_NAME), so that two stacks in one account never share a metric:
 * an alarm on `service: tray-auth-import` would watch a metric no worker emits.
 */
export const WORKER_METRIC_DIMENSIONS = { component: METRIC_COMPONENT.worker } as const;

export class ImportGuards extends Construct {
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: ImportGuardsProps) {
    super(scope, id);
    props.deadLetterQueue.applyRemovalPolicy(RemovalPolicy.RETAIN);

    const action = new SnsAction(props.topic);
    const workerMetric = (metricName: string, period: Duration) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { service: props.stackName, ...WORKER_METRIC_DIMENSIONS },
        period,
        statistic: 'Sum',
      });
    const alarm = (alarmId: string, description: string, metric: Metric, threshold: number) => {
      const created = new Alarm(this, alarmId, {
        // Named per stack like the other alarms: two stacks in one account must not share an alarm name.
        alarmName: `${props.stackName}-${alarmId}`,
        alarmDescription: description,
        metric,
        threshold,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        // No imports or no failures means no data: nothing is wrong.
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(action);
      this.alarms.push(created);
    };

    alarm(
      'DeadLetterFailed',
      'The import worker could not send a failed message to the dead-letter queue: it stays on the import queue and, after maxReceiveCount, SQS moves it without its reason. Check the worker logs ("could not dead-letter") and the DLQ (reachable, permissions).',
      workerMetric(WORKER_METRIC.deadLetterFailed, Duration.minutes(5)),
      0,
    );
    if (props.maxImportsPerHour !== undefined) {
      alarm(
        'ImportVolume',
        `${props.maxImportsPerHour} users were imported into Tray within one hour: the ceiling (maxImportsPerHour) is reached and further users wait in the queue until the next hour. Each is a Tray user and may be billed: check the sign-ups are genuine; raise maxImportsPerHour if they are.`,
        workerMetric(WORKER_METRIC.imported, Duration.hours(1)),
        // The worker never imports more than the ceiling: the alarm fires on reaching it.
        props.maxImportsPerHour - 1,
      );
    }
  }
}
