import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import type { Context, LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import { Ledger } from '../../shared/ledger.js';
import { createLogger, createMetrics, type Logger, type Metrics, MetricUnit } from '../../shared/logging.js';
import { EXPIRY_METRIC, METRIC_COMPONENT } from '../../shared/names.js';
import { formatIssues } from '../../shared/validation.js';
import { ExpiredAuthNotificationSchema, type ExpiryOutcome, handleExpiring } from './expiry.js';
import type { WebhookConfig } from './settings.js';
import { WebhookToken } from './token.js';

/**
 * The Lambda function URL behind Tray's "Expired auth notification webhook": checks the token,
 * reads Tray's body, and hands it to expiry.ts. Answers:
 * - 401 without detail for a missing or wrong token (nothing read, nothing recorded);
 * - 405 for anything but POST, 400 naming the field for a body that is not Tray's;
 * - 200 once the notification is handled, including for a user or auth the ledger does not know
 *   (logged and counted as ExpiringUnknown): Tray would otherwise repeat it, and no retry can
 *   make an unknown user known;
 * - 500 when the ledger or the queue failed: nothing is left half-done, so Tray's retry (if any)
 *   acts again.
 * The event is never logged: its URL carries the token.
 */
export interface WebhookDeps {
  config: WebhookConfig;
  dynamodb?: DynamoDBClient;
  sqs?: SQSClient;
  secretsManager?: SecretsManagerClient;
  ledger?: Ledger;
  logger?: Logger;
  metrics?: Metrics;
  now?: () => number;
}

export type WebhookHandler = (event: LambdaFunctionURLEvent, context: Context) => Promise<LambdaFunctionURLResult>;

const reply = (statusCode: number, body: unknown): LambdaFunctionURLResult => ({
  statusCode,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

export function createTrayWebhook(deps: WebhookDeps): WebhookHandler {
  const { config } = deps;
  const logger = deps.logger ?? createLogger(METRIC_COMPONENT.webhook);
  const metrics = deps.metrics ?? createMetrics(METRIC_COMPONENT.webhook);
  const secretsManager = deps.secretsManager ?? new SecretsManagerClient({});
  const sqs = deps.sqs ?? new SQSClient({});
  const ledger = deps.ledger ?? new Ledger({ tableName: config.LEDGER_TABLE, client: deps.dynamodb ?? new DynamoDBClient({}) });
  const token = new WebhookToken({
    secretId: config.WEBHOOK_TOKEN_SECRET_ID,
    maxAgeMs: config.WEBHOOK_TOKEN_CACHE_MS,
    client: secretsManager,
  });

  const lastChanged = async (secretId: string) =>
    (await secretsManager.send(new DescribeSecretCommand({ SecretId: secretId }))).LastChangedDate;
  const enqueue = async (message: unknown) => {
    await sqs.send(new SendMessageCommand({ QueueUrl: config.QUEUE_URL, MessageBody: JSON.stringify(message) }));
  };

  const handle = async (event: LambdaFunctionURLEvent): Promise<LambdaFunctionURLResult> => {
    let authorized: boolean;
    try {
      authorized = await token.matches(event.queryStringParameters?.token);
    } catch (e) {
      logger.error('the webhook token could not be read', { error: (e as Error).message });
      return reply(500, { message: 'internal error' });
    }
    if (!authorized) return reply(401, { message: 'unauthorized' });
    if (event.requestContext.http.method !== 'POST') return reply(405, { message: 'only POST' });

    const text = event.isBase64Encoded ? Buffer.from(event.body ?? '', 'base64').toString('utf8') : (event.body ?? '');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return reply(400, {
        message: 'the body is not JSON: Tray sends {authentication_name, service_name, user_id, authId, external_user_id}',
      });
    }
    const parsed = ExpiredAuthNotificationSchema.safeParse(raw);
    if (!parsed.success)
      return reply(400, { message: `the body is not Tray's expired-auth notification: ${formatIssues(parsed.error.issues)}` });
    const notification = parsed.data;

    let outcome: ExpiryOutcome;
    try {
      outcome = await handleExpiring(notification, {
        plan: config.plan,
        userPoolId: config.USER_POOL_ID,
        ledger,
        lastChanged,
        enqueue,
        repeatWindowMs: config.EXPIRY_REPEAT_WINDOW_HOURS * 3_600_000,
        now: deps.now,
      });
    } catch (e) {
      logger.error('expired-auth notification not handled; a retry acts again', {
        authId: notification.authId,
        error: { name: (e as Error).name, message: (e as Error).message },
      });
      return reply(500, { message: 'internal error' });
    }
    // `trayService`: Powertools' own `service` key names this function's service.
    const about = { authId: notification.authId, externalUserId: notification.external_user_id, trayService: notification.service_name };
    switch (outcome.outcome) {
      case 'reimport':
        logger.info('auth expiring: its secret has a newer value, rotation enqueued', {
          ...about,
          slot: outcome.slot,
          secretId: outcome.secretId,
        });
        return reply(200, { action: 'reimport' });
      case 'alert':
        metrics.addMetric(EXPIRY_METRIC.authExpiring, MetricUnit.Count, 1);
        logger.warn('auth expiring: the company must renew it (no newer value to import)', {
          ...about,
          slot: outcome.slot,
          reason: outcome.reason,
        });
        return reply(200, { action: 'alert' });
      case 'repeated':
        logger.info('expired-auth notification repeated: handled already', { ...about, action: outcome.action });
        return reply(200, { action: outcome.action, repeated: true });
      case 'unknown':
        metrics.addMetric(EXPIRY_METRIC.unknown, MetricUnit.Count, 1);
        logger.warn('expired-auth notification for a user or auth the ledger does not know', { ...about, reason: outcome.reason });
        return reply(200, { action: 'none' });
    }
  };

  const handler = middy<LambdaFunctionURLEvent, LambdaFunctionURLResult, Error, Context>()
    // Never the event: its query string carries the token.
    .use(injectLambdaContext(logger, { logEvent: false }))
    .use(logMetrics(metrics))
    .handler((event) => handle(event));
  return (event, context) => handler(event, context);
}
