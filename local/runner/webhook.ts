import { randomBytes } from 'node:crypto';
import { UsageError } from '../../cli/toolkit/errors.js';
import { loadWebhookConfig } from '../../functions/tray-webhook/settings.js';
import { createTrayWebhook } from '../../functions/tray-webhook/webhook.js';
import { type FunctionUrlStandIn, startFunctionUrl } from '../emulators/function-url.js';
import type { LocalStack } from '../local-stack.js';

/**
 * `--serve`: Tray's expired-auth webhook (functions/tray-webhook) behind a local function URL, its
 * token generated and seeded in the Secrets Manager stand-in as the stack generates it in AWS. The
 * Tray stand-in sends it a notification on request (POST /_standin/notify-expiring).
 */
export const LOCAL_WEBHOOK = {
  tokenSecretName: 'tray-auth-import/tray-webhook-token',
  functionName: 'tray-auth-import-tray-webhook',
} as const;

export interface LocalWebhook {
  /** The function URL, without the token. */
  url: string;
  tokenSecretName: string;
  functionUrl: FunctionUrlStandIn;
  close(): Promise<void>;
}

/** Reads its settings as its Lambda cold start would, from the environment the run set (queue, table, plan) plus its own. */
export async function startLocalWebhook(stack: LocalStack, userPoolId: string, port?: number): Promise<LocalWebhook> {
  stack.secretsStandIn.put(LOCAL_WEBHOOK.tokenSecretName, randomBytes(24).toString('base64url'));
  const config = loadWebhookConfig({
    ...process.env,
    LEDGER_TABLE: stack.tableName,
    QUEUE_URL: stack.queueUrl,
    USER_POOL_ID: userPoolId,
    WEBHOOK_TOKEN_SECRET_ID: LOCAL_WEBHOOK.tokenSecretName,
  });
  const handler = createTrayWebhook({ config, dynamodb: stack.dynamodb, sqs: stack.sqs, secretsManager: stack.secretsManager });
  const functionUrl = await startFunctionUrl(handler, { port, functionName: LOCAL_WEBHOOK.functionName }).catch((e: unknown) => {
    if ((e as { code?: string }).code === 'EADDRINUSE')
      throw new UsageError(`${(e as Error).message}: another program uses port ${port} (the Tray webhook); pass --base-port`);
    throw e;
  });
  return { url: functionUrl.url, tokenSecretName: LOCAL_WEBHOOK.tokenSecretName, functionUrl, close: () => functionUrl.close() };
}
