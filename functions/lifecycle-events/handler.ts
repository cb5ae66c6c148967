import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { Ledger } from '../../shared/ledger.js';
import { createLogger, createMetrics, MetricUnit } from '../../shared/logging.js';
import { LIFECYCLE_EVENTS_METRIC, METRIC_COMPONENT } from '../../shared/names.js';
import { COGNITO_EVENT_SOURCE, cognitoDeleteRoute } from './cognito.js';
import { dynamoDeletedUserLookup } from './ledger-lookup.js';
import { createRouter, type EventRoutes, type LifecycleEvent } from './router.js';
import { SECRETS_EVENT_SOURCE, secretChangeRoute } from './secrets.js';
import { loadLifecycleEventsSettings } from './settings.js';

/**
 * Lambda entry point: AWS events that start a lifecycle flow (EventBridge rules in
 * infra/constructs/lifecycle-events.ts), each turned into a lifecycle message on the import queue.
 */
export interface LifecycleEventsDeps {
  env?: NodeJS.ProcessEnv;
  sqs?: SQSClient;
  dynamodb?: DynamoDBClient;
}

export function createLifecycleEventsHandler(deps: LifecycleEventsDeps = {}) {
  const settings = loadLifecycleEventsSettings(deps.env ?? process.env);
  const logger = createLogger(METRIC_COMPONENT.lifecycleEvents);
  const metrics = createMetrics(METRIC_COMPONENT.lifecycleEvents);
  const sqs = deps.sqs ?? new SQSClient({});
  const dynamodb = deps.dynamodb ?? new DynamoDBClient({});
  const doc = DynamoDBDocumentClient.from(dynamodb);
  // The invocation's context, for routes that stop before the Lambda deadline.
  let context: Pick<Context, 'getRemainingTimeInMillis'> | undefined;
  const enqueue = async (message: unknown) => {
    await sqs.send(new SendMessageCommand({ QueueUrl: settings.queueUrl, MessageBody: JSON.stringify(message) }));
  };
  const log = { info: logger.info.bind(logger), error: logger.error.bind(logger) };

  // One line per event source. Each route throws on a failure worth retrying.
  const routes: EventRoutes = {
    [COGNITO_EVENT_SOURCE]: cognitoDeleteRoute({
      userPoolId: settings.userPoolId,
      lookup: dynamoDeletedUserLookup(doc, settings.ledgerTable),
      enqueue,
      log,
      unresolved: () => metrics.addMetric(LIFECYCLE_EVENTS_METRIC.offboardUnresolved, MetricUnit.Count, 1),
    }),
    ...(settings.plan
      ? {
          [SECRETS_EVENT_SOURCE]: secretChangeRoute({
            sqs,
            queueUrl: settings.queueUrl,
            ledger: new Ledger({ tableName: settings.ledgerTable, client: dynamodb }),
            plan: settings.plan,
            userPoolId: settings.userPoolId,
            log,
            remainingMs: () => context?.getRemainingTimeInMillis() ?? 60_000,
          }),
        }
      : {}),
  };
  const route = createRouter(routes, logger.warn.bind(logger));

  return async (event: LifecycleEvent, invocation?: Pick<Context, 'getRemainingTimeInMillis'>): Promise<void> => {
    context = invocation;
    try {
      await route(event);
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}

let instance: ReturnType<typeof createLifecycleEventsHandler> | undefined;
/** Built on the first event (not at import), so that tests can import the routes' wiring with their own settings. */
export const handler = (event: LifecycleEvent, context?: Pick<Context, 'getRemainingTimeInMillis'>): Promise<void> => {
  instance ??= createLifecycleEventsHandler();
  return instance(event, context);
};
