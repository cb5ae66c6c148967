import { buildQueueMessage } from '../../shared/message.js';
import { type ImportPlan, requiredAttributes } from '../../shared/plan.js';
import type { DemoUser } from '../demo.js';
import type { EventSourcePoller } from '../event-source-poller.js';
import type { LocalStack } from '../local-stack.js';
import { LOCAL_PASSWORD } from './sign-ups.js';
import type { CognitoSummary, LocalRunOptions, RunOutput, ServeInfo } from './types.js';
import type { LocalWebhook } from './webhook.js';

/** `--serve`: after the run, everything stays up on fixed ports and the worker keeps consuming the queue. */

/** The endpoints, and a sign-up and a queue message to try by hand. */
export function serveInfo(stack: LocalStack, cognito: CognitoSummary, plan: ImportPlan, sample: DemoUser | undefined): ServeInfo {
  let exampleMessage: string | undefined;
  let exampleAttributes: Record<string, string> = {};
  if (sample) {
    exampleAttributes = Object.fromEntries(
      Object.entries({ ...sample.attributes, email: 'grace@example.com', name: 'Grace Hopper' }).filter(([name]) => name !== 'sub'),
    );
    // A Cognito sub is a UUID; the worker refuses anything else.
    const sub = '00000000-0000-4000-8000-00000000ada0';
    const attributes = { ...sample.attributes, sub, email: 'ada@example.com', name: 'Ada Lovelace' };
    exampleMessage = JSON.stringify(
      buildQueueMessage({
        userPoolId: cognito.userPoolId,
        username: 'ada',
        userAttributes: attributes,
        attributeNames: requiredAttributes(plan),
        source: 'manual',
      }),
    );
  }
  return {
    sqs: stack.env.AWS_ENDPOINT_URL_SQS as string,
    dynamodb: stack.env.AWS_ENDPOINT_URL_DYNAMODB as string,
    secretsManager: stack.env.AWS_ENDPOINT_URL_SECRETS_MANAGER as string,
    tray: stack.tray?.url,
    queueUrl: stack.queueUrl,
    dlqUrl: stack.dlqUrl,
    tableName: stack.tableName,
    exampleMessage,
    cognito: {
      endpoint: cognito.endpoint,
      userPoolId: cognito.userPoolId,
      clientId: cognito.clientId,
      password: LOCAL_PASSWORD,
      exampleAttributes,
    },
  };
}

/** The worker keeps consuming the queue until the returned stop(), which then closes everything. */
export function serve(poller: EventSourcePoller, output: RunOutput, cleanUp: () => Promise<void>): () => Promise<void> {
  let stopping = false;
  const running = poller
    .runUntil(() => stopping, { timeoutMs: Number.POSITIVE_INFINITY, idleWaitMs: 250 })
    .catch((e: unknown) => {
      output.warn(`the worker's event source stopped: ${(e as Error).message}`);
    });
  let stopped: Promise<void> | undefined;
  return () =>
    (stopped ??= (async () => {
      stopping = true;
      await running;
      await cleanUp();
    })());
}

/** The webhook's port with --serve: the one after the Tray stand-in's. */
export function webhookPort(options: Pick<LocalRunOptions, 'basePort'>): number {
  return (options.basePort ?? 4710) + 4;
}

/** Where the webhook listens, and an auth of an imported user to have the Tray stand-in notify it about. */
export function webhookInfo(webhook: LocalWebhook, stack: LocalStack): NonNullable<ServeInfo['webhook']> {
  const auths = stack.tray?.snapshot().authentications ?? [];
  return { url: webhook.url, tokenSecretName: webhook.tokenSecretName, exampleAuthId: auths[0]?.id };
}
