import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { PostConfirmationTriggerEvent } from 'aws-lambda';
import { buildQueueMessage } from '../../shared/message.js';
import { METRIC_COMPONENT, METRICS_NAMESPACE, TRIGGER_METRIC } from '../../shared/names.js';

/**
 * Cognito post-confirmation trigger: puts one message on the import queue and returns the event
 * unchanged. It must never make a sign-up fail or wait on Tray: Cognito waits about 5 seconds
 * and returns a trigger error to the app even though the user is already confirmed. So the send
 * is bounded well inside that, and a failure is logged (naming the user, not the attributes)
 * and counted; the operators' `reconcile` command enqueues such users later.
 *
 * Its bundle holds only the SQS client and the message schema, so logging and the metric are
 * plain JSON lines (the metric in CloudWatch's embedded metric format) rather than Powertools.
 */
export interface TriggerOptions {
  sqs: SQSClient;
  queueUrl: string;
  attributeNames: readonly string[];
  /** Upper bound on the whole send, retries included. */
  timeoutMs: number;
  /** The settings are invalid (functions/post-confirmation/settings.ts): each sign-up logs this and counts a failure. */
  problem?: string | undefined;
  log?: (line: string) => void;
}

export const METRIC_NAMESPACE = METRICS_NAMESPACE;

export function createPostConfirmationHandler(options: TriggerOptions) {
  const log = options.log ?? ((line: string) => console.log(line));

  return async (event: PostConfirmationTriggerEvent): Promise<PostConfirmationTriggerEvent> => {
    // A confirmed forgotten password is not a new user.
    if (event?.triggerSource !== 'PostConfirmation_ConfirmSignUp') return event;
    // Filled in inside the try: an event without `request` (or with something odd in it) must be
    // logged and counted like any other failure, never thrown back at the sign-up.
    const user: { userPoolId: unknown; username: unknown; sub: unknown } = {
      userPoolId: event.userPoolId,
      username: event.userName,
      sub: undefined,
    };
    try {
      const userAttributes = event.request?.userAttributes ?? {};
      user.sub = typeof userAttributes.sub === 'string' ? userAttributes.sub : undefined;
      if (options.problem) throw new Error(options.problem);
      const message = buildQueueMessage({
        userPoolId: event.userPoolId,
        username: event.userName,
        userAttributes,
        attributeNames: options.attributeNames,
        source: 'signup',
      });
      await options.sqs.send(new SendMessageCommand({ QueueUrl: options.queueUrl, MessageBody: JSON.stringify(message) }), {
        abortSignal: AbortSignal.timeout(options.timeoutMs),
      });
      log(JSON.stringify({ level: 'INFO', message: 'sign-up enqueued for import', ...user }));
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      // The reason names fields only: zod's messages describe the problem, not the values
      // (the message carries no credentials, and the attributes are not logged).
      log(
        JSON.stringify({
          level: 'ERROR',
          message: 'could not enqueue sign-up for import; run `reconcile` to recover',
          ...user,
          error: error.name,
          reason: error.message.slice(0, 1_000),
        }),
      );
      log(JSON.stringify(enqueueFailedMetric()));
    }
    return event;
  };
}

/** One EMF record: CloudWatch turns this log line into the EnqueueFailed metric. */
function enqueueFailedMetric() {
  return {
    _aws: {
      Timestamp: Date.now(),
      CloudWatchMetrics: [
        { Namespace: METRIC_NAMESPACE, Dimensions: [['component']], Metrics: [{ Name: TRIGGER_METRIC.enqueueFailed, Unit: 'Count' }] },
      ],
    },
    component: METRIC_COMPONENT.trigger,
    [TRIGGER_METRIC.enqueueFailed]: 1,
  };
}
