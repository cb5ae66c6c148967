import type { SQSClient } from '@aws-sdk/client-sqs';
import * as z from 'zod';
import { Pacer, SQS_BATCH_SIZE, sendBatch } from '../../cli/enqueue.js';
import { ImportError } from '../../shared/errors.js';
import type { Ledger } from '../../shared/ledger.js';
import { buildLifecycleMessage, type LifecycleMessage } from '../../shared/lifecycle/message.js';
import { slotsReadingSecret } from '../../shared/lifecycle/rotate.js';
import { COGNITO_SUB } from '../../shared/message.js';
import type { ImportPlan } from '../../shared/plan.js';
import { DEFAULT_TRAY_BUDGET_PER_SECOND } from '../../shared/tray/pacer.js';

/**
 * A secret the plan reads changed: Secrets Manager reports `PutSecretValue` and `UpdateSecret` as
 * "AWS API Call via CloudTrail" and the end of an automatic rotation (`RotationSucceeded`) as
 * "AWS Service Event via CloudTrail", both from source `aws.secretsmanager`. This turns one into
 * rotate messages on the import queue:
 * - a per-user secret (plan template `prefix/{{sub}}`): one message, for that sub;
 * - a shared secret: one message per enabled user of the ledger, paged, paced at `ratePerSecond`
 *   (the queue is the imports' too: a fan-out must not bury the sign-ups behind it).
 *
 * Every message carries `requestedAt` = the event's time, the same on every delivery of the event.
 * The worker skips a user whose last rotation began after it (shared/lifecycle/rotate.ts), and
 * this fan-out skips them too, so a repeated fan-out rotates nobody twice. Close to the
 * invocation's deadline the fan-out stops and throws: EventBridge invokes again (async retries,
 * then the function's failure destination), and the next run goes past the users already done.
 */
export const SECRETS_EVENT_SOURCE = 'aws.secretsmanager';
export const SECRET_CHANGE_EVENTS = ['PutSecretValue', 'UpdateSecret', 'RotationSucceeded'] as const;
export const SECRET_CHANGE_DETAIL_TYPES = ['AWS API Call via CloudTrail', 'AWS Service Event via CloudTrail'] as const;

/** A Tray rotation costs about five calls (authorize, list, create, update, remove). */
export const TRAY_CALLS_PER_ROTATION = 5;
/** Stop enqueueing with this much of the invocation left. */
const DEADLINE_MARGIN_MS = 10_000;

const Text = z.string().min(1).optional().catch(undefined);
const SecretChangeDetailSchema = z.looseObject({
  eventName: z.string(),
  errorCode: z.string().nullish(),
  requestParameters: z.looseObject({ secretId: Text, clientRequestToken: Text }).nullish().catch(undefined),
  responseElements: z.looseObject({ arn: Text, aRN: Text, versionId: Text }).nullish().catch(undefined),
  additionalEventData: z.looseObject({ SecretId: Text, secretId: Text }).nullish().catch(undefined),
});

/** The EventBridge envelope (the same as functions/lifecycle-events/router.ts LifecycleEvent). */
export interface SecretEvent {
  source: string;
  'detail-type'?: string | undefined;
  id?: string | undefined;
  time?: string | undefined;
  detail?: unknown;
}

export interface SecretChangeDeps {
  sqs: SQSClient;
  queueUrl: string;
  ledger: Ledger;
  plan: ImportPlan;
  userPoolId: string;
  log: {
    info: (message: string, extra: Record<string, unknown>) => void;
    error: (message: string, extra: Record<string, unknown>) => void;
  };
  /** Rotate messages per second for a shared secret's fan-out (default: the Tray budget's worth). */
  ratePerSecond?: number;
  /** Milliseconds left in this invocation (Lambda's context.getRemainingTimeInMillis). */
  remainingMs?: () => number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type SecretChangeResult =
  | { kind: 'ignored'; reason: string; enqueued: 0 }
  | { kind: 'enqueued'; secret: string; perUser: boolean; enqueued: number; skipped: number };

export function secretChangeRoute(deps: SecretChangeDeps): (event: SecretEvent) => Promise<void> {
  return async (event) => {
    await handleSecretChange(event, deps);
  };
}

export async function handleSecretChange(event: SecretEvent, deps: SecretChangeDeps): Promise<SecretChangeResult> {
  const parsed = SecretChangeDetailSchema.safeParse(event.detail);
  const ignored = (reason: string): SecretChangeResult => {
    deps.log.info(`Secrets Manager event ignored: ${reason}`, { id: event.id });
    return { kind: 'ignored', reason, enqueued: 0 };
  };
  if (!parsed.success) return ignored('not a CloudTrail record');
  const detail = parsed.data;
  if (!(SECRET_CHANGE_EVENTS as readonly string[]).includes(detail.eventName)) return ignored(`${detail.eventName} changes no value`);
  if (detail.errorCode) return ignored(`the call failed (${detail.errorCode}): nothing changed`);
  const secret =
    detail.requestParameters?.secretId ??
    detail.responseElements?.arn ??
    detail.responseElements?.aRN ??
    detail.additionalEventData?.SecretId ??
    detail.additionalEventData?.secretId;
  if (!secret) return ignored('the event names no secret');
  const { slots, perUser } = slotsReadingSecret(deps.plan, secret);
  if (slots.length === 0) return ignored('a secret the plan does not read');

  // The event's time, identical on every delivery: what makes a repeated fan-out skip those done.
  const requestedAt = event.time && !Number.isNaN(Date.parse(event.time)) ? new Date(event.time).toISOString() : new Date().toISOString();
  const version = detail.responseElements?.versionId ?? detail.requestParameters?.clientRequestToken;
  const build = (sub: string) =>
    buildLifecycleMessage({
      kind: 'rotate',
      userPoolId: deps.userPoolId,
      sub,
      source: 'secret-change',
      requestedAt,
      slots,
      secretId: version ? `${secret}@${version}` : secret,
    });

  if (perUser) {
    const sub = secret.slice(secret.lastIndexOf('/') + 1).replace(/-[A-Za-z0-9]{6}$/, '');
    if (!COGNITO_SUB.test(sub)) return ignored('a per-user secret whose name does not end in a Cognito sub');
    await send(deps, [build(sub)]);
    deps.log.info('per-user secret changed: rotation enqueued', { id: event.id, sub, eventName: detail.eventName });
    return { kind: 'enqueued', secret, perUser, enqueued: 1, skipped: 0 };
  }

  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const pacer = new Pacer(deps.ratePerSecond ?? DEFAULT_TRAY_BUDGET_PER_SECOND / TRAY_CALLS_PER_ROTATION, now, sleep);
  let enqueued = 0;
  let skipped = 0;
  let batch: LifecycleMessage[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await pacer.take(batch.length);
    await send(deps, batch);
    enqueued += batch.length;
    batch = [];
  };
  for await (const entry of deps.ledger.entries(deps.userPoolId)) {
    if (entry.status !== 'enabled') continue;
    if (entry.lastRotatedAt !== undefined && Date.parse(entry.lastRotatedAt) >= Date.parse(requestedAt)) {
      skipped++;
      continue;
    }
    if (deps.remainingMs && deps.remainingMs() < DEADLINE_MARGIN_MS) {
      await flush();
      deps.log.info('shared secret fan-out stopped before the deadline: EventBridge retries the event', {
        id: event.id,
        enqueued,
        skipped,
      });
      throw new ImportError(
        'OUT_OF_TIME',
        'lifecycle',
        `fan-out of ${secret} stopped after ${enqueued} users to stay within the invocation; the retried event continues past the users already rotated`,
      );
    }
    batch.push(build(entry.sub));
    if (batch.length === SQS_BATCH_SIZE) await flush();
  }
  await flush();
  deps.log.info('shared secret changed: rotations enqueued', { id: event.id, enqueued, skipped, eventName: detail.eventName });
  return { kind: 'enqueued', secret, perUser, enqueued, skipped };
}

async function send(deps: SecretChangeDeps, messages: LifecycleMessage[]): Promise<void> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  // sendBatch reads only `sub` and `username` besides the body: a lifecycle message has both (username optional).
  const outcome = await sendBatch(deps.sqs, deps.queueUrl, messages, { sleep });
  if (outcome.failed.length > 0) {
    throw new ImportError(
      'AWS_UNAVAILABLE',
      'lifecycle',
      `${outcome.failed.length} rotate messages could not be enqueued (${outcome.failed[0]?.reason}); the event is retried`,
    );
  }
}
