import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Queue, QueueEncryption, RedrivePermission } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface ImportQueuesProps {
  /** Fixed name of the import queue; the DLQ's redrive-allow policy names it by an ARN built from it. */
  queueName: string;
  deadLetterQueueName: string;
  /** Deliveries before SQS moves a message to the DLQ (the worker reads the same number). */
  maxReceiveCount: number;
  /** Worker timeout: the visibility timeout is 6 times this (AWS guidance for Lambda consumers). */
  workerTimeout: Duration;
}

/** The AWS guidance: visibility timeout at least 6× the consuming function's timeout. */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/**
 * The import queue and its dead-letter queue: SSE (SQS-managed keys), TLS-only access, and
 * redrive-allow policies so that nothing else can use either queue as its DLQ:
 * - the import queue: DENY_ALL (it is nobody's DLQ);
 * - the DLQ: BY_QUEUE, naming only the import queue.
 *
 * Naming the import queue in the DLQ's policy by reference would be a CloudFormation cycle
 * (the import queue's redrive policy references the DLQ). The import queue therefore has a fixed
 * name, and the DLQ names it by an ARN built from that name with `Stack.formatArn`: no reference,
 * no cycle.
 */
export class ImportQueues extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: ImportQueuesProps) {
    super(scope, id);

    const queueArn = Stack.of(this).formatArn({ service: 'sqs', resource: props.queueName, arnFormat: ArnFormat.NO_RESOURCE_NAME });

    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      queueName: props.deadLetterQueueName,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Moves keep a message's original enqueue time, so the DLQ keeps messages longer than the
      // queue (4 days): the maximum, 14 days, to investigate and redrive.
      retentionPeriod: Duration.days(14),
      // Its messages are the only record of users that could not be imported: `cdk destroy` keeps
      // it (export it with `dlq export`, then delete it by hand when it is no longer needed).
      removalPolicy: RemovalPolicy.RETAIN,
      redriveAllowPolicy: {
        redrivePermission: RedrivePermission.BY_QUEUE,
        sourceQueues: [Queue.fromQueueArn(this, 'ImportQueueByName', queueArn)],
      },
    });

    this.queue = new Queue(this, 'Queue', {
      queueName: props.queueName,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.workerTimeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR),
      // `backfill` reads this (GetQueueAttributes) and refuses a run the workers cannot drain within 80 % of it.
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
      redriveAllowPolicy: { redrivePermission: RedrivePermission.DENY_ALL },
    });
  }
}
