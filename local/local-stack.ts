import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { LEDGER_KEY } from '../shared/ledger.js';
import { startDynamoDbEmulator } from './emulators/dynamodb.js';
import { type SecretsManagerStandIn, startSecretsManagerStandIn } from './emulators/secrets-manager.js';
import { startSqsEmulator } from './emulators/sqs.js';
import { startTrayStandIn, type TrayStandIn, type TrayStandInOptions } from './tray-standin/index.js';

/**
 * Everything the pipeline talks to, on 127.0.0.1: SQS (fauxqs), DynamoDB (dynalite), Secrets
 * Manager (a small stand-in) and Tray (the stand-in). Queues, DLQ, redrive policy and ledger
 * table are created as the CDK stack creates them. The real SDK clients reach the emulators
 * through the standard AWS_ENDPOINT_URL_* variables, set by `applyEnv()`.
 *
 * Shared by the tests, `npm start` and the CLI's tests.
 */
export interface LocalStackOptions {
  masterToken: string;
  masterTokenSecretName?: string;
  /** Extra secrets to seed (plan credentials). */
  secrets?: Record<string, string>;
  maxReceiveCount?: number;
  visibilityTimeoutSeconds?: number;
  /** Tray stand-in options, or false to use a real Tray (bring your own). */
  tray?: Omit<TrayStandInOptions, 'masterToken'> | false;
  /** Fixed ports (for `--serve`), else ephemeral. */
  ports?: { sqs?: number; dynamodb?: number; secretsManager?: number; tray?: number };
}

export interface LocalStack {
  env: Record<string, string>;
  /** The variables, set on process.env from start until close(). */
  sqs: SQSClient;
  dynamodb: DynamoDBClient;
  secretsManager: SecretsManagerClient;
  secretsStandIn: SecretsManagerStandIn;
  tray: TrayStandIn | undefined;
  /** Requests the DynamoDB emulator served, by operation. */
  dynamodbRequests: Record<string, number>;
  queueUrl: string;
  dlqUrl: string;
  dlqArn: string;
  tableName: string;
  masterTokenSecretName: string;
  close(): Promise<void>;
}

export const LOCAL_QUEUE_NAME = 'tray-auth-import-queue';
export const LOCAL_DLQ_NAME = 'tray-auth-import-dlq';
export const LOCAL_TABLE_NAME = 'tray-auth-import-ledger';

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const masterTokenSecretName = options.masterTokenSecretName ?? 'tray-auth-import/master-token';
  const [sqsEmulator, dynamo, secretsStandIn] = await Promise.all([
    startSqsEmulator(options.ports?.sqs),
    startDynamoDbEmulator(options.ports?.dynamodb),
    startSecretsManagerStandIn({ [masterTokenSecretName]: options.masterToken, ...options.secrets }, options.ports?.secretsManager),
  ]);
  const tray =
    options.tray === false
      ? undefined
      : await startTrayStandIn({ ...options.tray, masterToken: options.masterToken, port: options.ports?.tray ?? options.tray?.port });

  const env: Record<string, string> = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_SQS: sqsEmulator.endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsStandIn.endpoint,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    MASTER_TOKEN_SECRET_ID: masterTokenSecretName,
    LEDGER_TABLE: LOCAL_TABLE_NAME,
  };
  if (tray) env.TRAY_GRAPHQL_URL = tray.url;

  // Set for the stack's lifetime: the SDK resolves endpoint, region and credentials lazily.
  const restore = applyEnvTo(process.env, env);
  const sqs = new SQSClient({});
  const dynamodb = new DynamoDBClient({});
  const secretsManager = new SecretsManagerClient({});

  const maxReceiveCount = options.maxReceiveCount ?? 5;
  const dlq = await sqs.send(
    new CreateQueueCommand({ QueueName: LOCAL_DLQ_NAME, Attributes: { MessageRetentionPeriod: String(14 * 24 * 3600) } }),
  );
  const dlqUrl = dlq.QueueUrl as string;
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))).Attributes
    ?.QueueArn as string;
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: LOCAL_QUEUE_NAME,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? 30),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
      },
    }),
  );
  await dynamodb.send(
    new CreateTableCommand({
      TableName: LOCAL_TABLE_NAME,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: LEDGER_KEY.partitionKey, AttributeType: 'S' },
        { AttributeName: LEDGER_KEY.sortKey, AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: LEDGER_KEY.partitionKey, KeyType: 'HASH' },
        { AttributeName: LEDGER_KEY.sortKey, KeyType: 'RANGE' },
      ],
    }),
  );
  env.QUEUE_URL = queue.QueueUrl as string;
  env.DLQ_URL = dlqUrl;
  env.MAX_RECEIVE_COUNT = String(maxReceiveCount);
  Object.assign(process.env, { QUEUE_URL: env.QUEUE_URL, DLQ_URL: env.DLQ_URL, MAX_RECEIVE_COUNT: env.MAX_RECEIVE_COUNT });

  return {
    env,
    sqs,
    dynamodb,
    secretsManager,
    secretsStandIn,
    tray,
    dynamodbRequests: dynamo.requests,
    queueUrl: env.QUEUE_URL,
    dlqUrl: env.DLQ_URL,
    dlqArn,
    tableName: LOCAL_TABLE_NAME,
    masterTokenSecretName,
    close: async () => {
      sqs.destroy();
      dynamodb.destroy();
      secretsManager.destroy();
      await Promise.all([sqsEmulator.close(), dynamo.close(), secretsStandIn.close(), tray?.close()]);
      restore();
      for (const k of ['QUEUE_URL', 'DLQ_URL', 'MAX_RECEIVE_COUNT']) delete process.env[k];
    },
  };
}

/** Messages in a queue, visible, in flight or delayed: zero once the event source has nothing left to do. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  const a = out.Attributes ?? {};
  return (
    Number(a.ApproximateNumberOfMessages ?? 0) +
    Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
    Number(a.ApproximateNumberOfMessagesDelayed ?? 0)
  );
}

function applyEnvTo(target: NodeJS.ProcessEnv, values: Record<string, string>): () => void {
  const previous = Object.fromEntries(Object.keys(values).map((k) => [k, target[k]]));
  Object.assign(target, values);
  return () => {
    for (const [k, v] of Object.entries(previous)) {
      if (v === undefined) delete target[k];
      else target[k] = v;
    }
  };
}
