import middy from '@middy/core';
import sqsPartialBatchFailure from '@middy/sqs-partial-batch-failure';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import pLimit from 'p-limit';
import type { WorkerConfig } from './config.js';
import { delayRedelivery, retryDelaySeconds, sendToDeadLetterQueue } from './dead-letter.js';
import { asImportError, ImportError } from './errors.js';
import { importUser, type ImportDeps } from './import-workflow.js';
import { Ledger } from './ledger.js';
import { createLogger, createMetrics, MetricUnit, type Logger, type Metrics } from './logging.js';
import { masterTokenMiddleware, type MasterTokenContext } from './master-token.js';
import { parseQueueMessage, type QueueMessage } from './message.js';
import { trayEndpoint } from './plan.js';
import { SecretReader } from './secrets.js';
import { TrayClient } from './tray/client.js';

/**
 * The import worker: an SQS consumer with partial batch responses. Each record ends in one of
 * three ways, so that nothing is lost and nothing burns retries it cannot use:
 * - imported (or already imported): acknowledged;
 * - transient failure: reported as a batch item failure, its next delivery pushed back by a
 *   visibility timeout that grows with the receive count;
 * - permanent failure, invalid message, or a transient one on the last allowed delivery: sent
 *   to the DLQ with its reason as message attributes, then acknowledged.
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
  random?: () => number;
}

/** Time kept back from the Lambda deadline to report results and dead-letter. */
const SAFETY_MARGIN_MS = 3_000;
/** The lease outlasts the invocation by this much (clock skew between Lambda and DynamoDB). */
const LEASE_MARGIN_MS = 2_000;

export function createImportWorker(deps: WorkerDeps) {
  const { config } = deps;
  const logger = deps.logger ?? createLogger('import-worker');
  const metrics = deps.metrics ?? createMetrics('import-worker');
  const sqs = deps.sqs ?? new SQSClient({});
  const ledger = deps.ledger ?? new Ledger({ tableName: config.LEDGER_TABLE, client: deps.dynamodb ?? new DynamoDBClient({}) });
  const secrets = new SecretReader({ client: deps.secretsManager ?? new SecretsManagerClient({}) });
  const url = trayEndpoint(config.plan, config.TRAY_GRAPHQL_URL);

  const processRecord = async (record: SQSRecord, context: MasterTokenContext): Promise<void> => {
    const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? '1');
    const lastAttempt = receiveCount >= config.MAX_RECEIVE_COUNT;
    let message: QueueMessage | undefined;
    try {
      message = parseQueueMessage(record.body);
      const deadline = Date.now() + context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS;
      const tray = new TrayClient({ url, masterToken: context.masterToken, timeoutMs: config.TRAY_TIMEOUT_MS, deadline, retry: { random: deps.random } });
      const importDeps: ImportDeps = {
        plan: config.plan,
        tray,
        ledger,
        secrets,
        // Held until the invocation can no longer be running: no call outlives the deadline, and
        // Lambda ends the invocation SAFETY_MARGIN_MS after it.
        leaseMs: context.getRemainingTimeInMillis() + LEASE_MARGIN_MS,
        deadline,
        callTimeoutMs: config.TRAY_TIMEOUT_MS,
        lastAttempt,
        onEvent: (event) => logger.debug('import step', { sub: message?.sub, ...event }),
      };
      const result = await importUser(message, importDeps);
      metrics.addMetric(result.outcome === 'enabled' ? 'Imported' : 'AlreadyImported', MetricUnit.Count, 1);
      logger.info(result.outcome === 'enabled' ? 'user imported' : 'user already imported', {
        sub: message.sub,
        messageId: record.messageId,
        trayUserId: result.entry.trayUserId,
        instanceId: result.entry.instanceId,
      });
    } catch (e) {
      const error = asImportError(e, 'ledger');
      const user = { sub: message?.sub, userPoolId: message?.userPoolId, messageId: record.messageId, receiveCount };
      if (error.kind === 'permanent' || lastAttempt) {
        const final = error.kind === 'permanent' ? error : new ImportError(error.code, error.step, `gave up after ${receiveCount} deliveries: ${error.message}`);
        await sendToDeadLetterQueue(sqs, config.DLQ_URL, record, final, user);
        metrics.addMetric('DeadLettered', MetricUnit.Count, 1);
        logger.error('import failed; message dead-lettered', { ...user, error: final.toJSON() });
        return;
      }
      const delay = retryDelaySeconds(receiveCount, config.RETRY_BASE_SECONDS, config.RETRY_MAX_SECONDS, deps.random);
      await delayRedelivery(sqs, config.QUEUE_URL, record, delay).catch((err: unknown) =>
        logger.warn('could not delay redelivery; SQS will redeliver after the queue visibility timeout', { ...user, error: (err as Error).name }),
      );
      metrics.addMetric('Retried', MetricUnit.Count, 1);
      logger.warn('import failed; will retry', { ...user, retryInSeconds: delay, error: error.toJSON() });
      throw error;
    }
  };

  const limit = pLimit(config.BATCH_CONCURRENCY);
  const handler = async (event: SQSEvent, context: MasterTokenContext) =>
    Promise.allSettled(event.Records.map((record) => limit(() => processRecord(record, context))));

  return middy<SQSEvent, SQSBatchResponse, Error, MasterTokenContext>()
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics))
    .use(masterTokenMiddleware({ secretId: config.MASTER_TOKEN_SECRET_ID, cacheExpiryMs: config.MASTER_TOKEN_CACHE_MS }))
    // Each record logs its own outcome above; the middleware would log errors (and bodies) again.
    .use(sqsPartialBatchFailure({ logger: () => undefined }))
    .handler(handler as never);
}
