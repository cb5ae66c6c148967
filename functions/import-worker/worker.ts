import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import middy from '@middy/core';
import sqsPartialBatchFailure from '@middy/sqs-partial-batch-failure';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createImportBatch } from '../../shared/import-batch.js';
import { Ledger } from '../../shared/ledger.js';
import { createLogger, createMetrics, type Logger, type Metrics } from '../../shared/logging.js';
import { MasterTokenCache } from '../../shared/master-token.js';
import { METRIC_COMPONENT } from '../../shared/names.js';
import { trayEndpoint } from '../../shared/plan.js';
import { SecretReader } from '../../shared/secrets.js';
import { defaultBurst, Pacer } from '../../shared/tray/pacer.js';
import type { WorkerConfig } from './settings.js';

/**
 * The import worker's Lambda wiring: clients, the master-token cache, and the middy chain
 * (Powertools logger context and metrics, partial batch responses) around one SQS batch of
 * imports (shared/import-batch.ts). `handler.ts` builds it from the environment; tests, the
 * benchmark and `npm start` build it with their own clients through `createImportWorker`.
 */
export interface WorkerDeps {
  config: WorkerConfig;
  sqs?: SQSClient;
  dynamodb?: DynamoDBClient;
  secretsManager?: SecretsManagerClient;
  logger?: Logger;
  metrics?: Metrics;
  /** Tests use this to simulate a crash between a Tray create and its ledger write. */
  ledger?: Ledger;
  /** This container's share of the Tray budget; tests pass one with a fake clock. */
  pacer?: Pacer;
  random?: () => number;
}

export function createImportWorker(deps: WorkerDeps) {
  const { config } = deps;
  const logger = deps.logger ?? createLogger(METRIC_COMPONENT.worker);
  const metrics = deps.metrics ?? createMetrics(METRIC_COMPONENT.worker);
  const secretsManager = deps.secretsManager ?? new SecretsManagerClient({});
  const masterToken = new MasterTokenCache({
    secretId: config.MASTER_TOKEN_SECRET_ID,
    maxAgeMs: config.MASTER_TOKEN_CACHE_MS,
    client: secretsManager,
  });
  const importBatch = createImportBatch({
    plan: config.plan,
    trayUrl: trayEndpoint(config.plan, config.TRAY_GRAPHQL_URL),
    queueUrl: config.QUEUE_URL,
    dlqUrl: config.DLQ_URL,
    maxReceiveCount: config.MAX_RECEIVE_COUNT,
    maxUsersInFlight: config.MAX_USERS_IN_FLIGHT,
    trayTimeoutMs: config.TRAY_TIMEOUT_MS,
    retryBaseSeconds: config.RETRY_BASE_SECONDS,
    retryMaxSeconds: config.RETRY_MAX_SECONDS,
    maxImportsPerHour: config.MAX_IMPORTS_PER_HOUR,
    sqs: deps.sqs ?? new SQSClient({}),
    ledger: deps.ledger ?? new Ledger({ tableName: config.LEDGER_TABLE, client: deps.dynamodb ?? new DynamoDBClient({}) }),
    secrets: new SecretReader({ client: secretsManager }),
    pacer:
      deps.pacer ??
      new Pacer({ ratePerSecond: config.TRAY_RATE_PER_SECOND, burst: config.TRAY_BURST ?? defaultBurst(config.TRAY_RATE_PER_SECOND) }),
    logger,
    metrics,
    random: deps.random,
  });

  return (
    middy<SQSEvent, SQSBatchResponse, Error, Context>()
      .use(injectLambdaContext(logger))
      .use(logMetrics(metrics))
      // Each record logs its own outcome; the middleware would log errors (and bodies) again.
      .use(sqsPartialBatchFailure({ logger: () => undefined }))
      // The master token is read when the first record needs it, at most once per invocation.
      .handler((event, context) => importBatch(event, context, masterToken.forInvocation()) as never)
  );
}
