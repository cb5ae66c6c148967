import { type MessageAttributeValue, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { sendToDeadLetterQueue } from './dead-letter.js';
import { asImportError, ImportError } from './errors.js';
import { type ImportDeps, importUser, TRAY_ENABLE_DELAY_MS } from './import-workflow.js';
import type { Ledger, UserKey } from './ledger.js';
import { LIFECYCLE_HANDLERS } from './lifecycle/index.js';
import { parseWorkMessage, type WorkMessage } from './lifecycle/message.js';
import { type Logger, type Metrics, MetricUnit } from './logging.js';
import { QueueMessageSchema } from './message.js';
import { LIFECYCLE_METRIC, WORKER_METRIC } from './names.js';
import type { ImportPlan } from './plan.js';
import { delayRedelivery, retryDelaySeconds } from './redelivery.js';
import { isFinal } from './retry.js';
import type { SecretReader } from './secrets.js';
import { type MasterTokenSource, TrayClient } from './tray/client.js';
import type { Pacer } from './tray/pacer.js';

/**
 * One SQS batch of import messages, with partial batch responses. Each record ends in one of
 * four ways, so that nothing is lost and nothing burns retries it cannot use:
 * - imported (or already imported): acknowledged;
 * - not started (no time left in the invocation, or another delivery holds the user): sent
 *   back to the queue as a new message carrying its attempt count, and acknowledged — it was
 *   no attempt, so it must not count towards the dead-letter limit;
 * - transient failure: reported as a batch item failure, its next delivery pushed back by a
 *   visibility timeout that grows with the attempt count;
 * - final failure (`isFinal`: permanent, invalid message, or transient on the last allowed
 *   attempt): sent to the DLQ with its reason as message attributes, then acknowledged.
 *
 * Pacing: every Tray call waits for a slot of this container's share of the fleet's rate
 * budget. The batch's users all run at once (up to `maxUsersInFlight`) and take the slots in
 * turn, so calls in flight are as many as rate × latency needs, at any Tray latency, and a user
 * waiting out Tray's 2 s before enabling leaves its slots to others.
 *
 * No middy here: functions/import-worker/ composes this with the Lambda middleware.
 */
export interface ImportBatchOptions {
  plan: ImportPlan;
  trayUrl: string;
  queueUrl: string;
  dlqUrl: string;
  /** The queue's redrive maxReceiveCount: on the last delivery a failure is final. */
  maxReceiveCount: number;
  maxUsersInFlight: number;
  trayTimeoutMs: number;
  retryBaseSeconds: number;
  retryMaxSeconds: number;
  maxImportsPerHour?: number | undefined;
  sqs: SQSClient;
  ledger: Ledger;
  secrets: SecretReader;
  pacer: Pacer;
  logger: Logger;
  metrics: Metrics;
  random?: (() => number) | undefined;
}

export type ImportBatch = (
  event: SQSEvent,
  context: Pick<Context, 'getRemainingTimeInMillis'>,
  masterToken: MasterTokenSource,
) => Promise<PromiseSettledResult<void>[]>;

/** Time kept back from the Lambda deadline to report results and dead-letter. */
const SAFETY_MARGIN_MS = 3_000;
/** The lease outlasts the invocation by this much (clock skew between Lambda and DynamoDB). */
const LEASE_MARGIN_MS = 2_000;
/** Message attribute carrying the attempts that earlier messages of this user already made. */
export const PRIOR_ATTEMPTS_ATTRIBUTE = 'PriorAttempts';
/** A user is started only while at least this many times its expected duration is left. */
const START_MARGIN = 1.25;
/** Allowance for the answer to a user's last call, in the start-or-hand-back estimate. */
const LAST_ANSWER_MS = 2_000;

export function createImportBatch(options: ImportBatchOptions): ImportBatch {
  const { sqs, ledger, secrets, pacer, logger, metrics } = options;
  const callsPerUser = 4 + options.plan.auths.length;
  /**
   * How long a user started now would take: the Tray calls of every user in flight and its own,
   * at the pacer's rate (an upper bound: those in flight made some of theirs already), plus Tray's
   * 2 s wait before enabling and a last call's answer.
   */
  const expectedMs = (inFlight: number) => (inFlight + 1) * callsPerUser * pacer.intervalMs() + TRAY_ENABLE_DELAY_MS + LAST_ANSWER_MS;

  /** Attempts this user's messages made before this delivery, and whether this one is the last allowed. */
  const attemptsOf = (record: SQSRecord) => {
    const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? '1');
    const prior = Number(record.messageAttributes?.[PRIOR_ATTEMPTS_ATTRIBUTE]?.stringValue ?? '0') || 0;
    return { receiveCount, prior, attempt: prior + receiveCount, lastAttempt: prior + receiveCount >= options.maxReceiveCount };
  };

  /** Puts a record that was not started back on the queue as a new message: it was no attempt. */
  const handBack = async (record: SQSRecord, reason: ImportError, retryInMs: number, sub?: string): Promise<void> => {
    const { receiveCount, prior } = attemptsOf(record);
    const attributes: Record<string, MessageAttributeValue> = {};
    for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
      if (value.stringValue !== undefined) attributes[name] = { DataType: value.dataType, StringValue: value.stringValue };
    }
    // The earlier receives of this message were real attempts; this one was not.
    attributes[PRIOR_ATTEMPTS_ATTRIBUTE] = { DataType: 'Number', StringValue: String(prior + receiveCount - 1) };
    try {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: options.queueUrl,
          MessageBody: record.body,
          MessageAttributes: attributes,
          DelaySeconds: Math.min(900, Math.ceil(retryInMs / 1000)),
        }),
      );
    } catch (e) {
      // Could not put it back: leave it to SQS (it then counts as an attempt, but nothing is lost).
      logger.warn('could not hand a record back to the queue; SQS will redeliver it', {
        sub,
        messageId: record.messageId,
        error: (e as Error).name,
      });
      throw new NotHandedBack(reason);
    }
    metrics.addMetric(WORKER_METRIC.deferred, MetricUnit.Count, 1);
    logger.info('record not started; handed back to the queue', {
      sub,
      messageId: record.messageId,
      retryInSeconds: Math.ceil(retryInMs / 1000),
      reason: reason.toJSON(),
    });
  };

  const processRecord = async (
    record: SQSRecord,
    context: Pick<Context, 'getRemainingTimeInMillis'>,
    masterToken: MasterTokenSource,
    deadline: number,
  ): Promise<void> => {
    const { receiveCount, attempt, lastAttempt } = attemptsOf(record);
    let message: { sub: string; userPoolId: string } | undefined;
    try {
      const work = await parseMessageRecordingRejection(record.body, ledger);
      message = work.message;
      const tray = new TrayClient({
        url: options.trayUrl,
        masterToken,
        timeoutMs: options.trayTimeoutMs,
        deadline,
        retry: { random: options.random },
        pacer,
        // Tray's latency as the worker sees it: what the dashboard shows and the pacing adapts to.
        onCall: ({ ms }) => metrics.addMetric(WORKER_METRIC.trayCallMs, MetricUnit.Milliseconds, Math.round(ms)),
      });
      const importDeps: ImportDeps = {
        plan: options.plan,
        tray,
        ledger,
        secrets,
        // Held until the invocation can no longer be running: no call outlives the deadline, and
        // Lambda ends the invocation SAFETY_MARGIN_MS after it.
        leaseMs: context.getRemainingTimeInMillis() + LEASE_MARGIN_MS,
        deadline,
        callTimeoutMs: options.trayTimeoutMs,
        maxImportsPerHour: options.maxImportsPerHour,
        lastAttempt,
        onEvent: (event) => logger.debug('import step', { sub: message?.sub, ...event }),
      };
      if (work.kind !== 'import') {
        const done = await LIFECYCLE_HANDLERS[work.kind](work.message, importDeps);
        if (done.outcome === 'deferred') return await handBack(record, done.error, done.retryInMs, work.message.sub);
        if (done.outcome === 'done') metrics.addMetric(LIFECYCLE_METRIC[work.kind], MetricUnit.Count, 1);
        logger.info(done.outcome === 'done' ? `${work.kind}: ${done.detail}` : `${work.kind} skipped: ${done.reason}`, {
          sub: work.message.sub,
          messageId: record.messageId,
          source: work.message.source,
        });
        return;
      }
      const result = await importUser(work.message, importDeps);
      if (result.outcome === 'deferred') return await handBack(record, result.error, result.retryInMs, work.message.sub);
      if (result.outcome === 'offboarded') {
        logger.info('user offboarded before this import message ran; nothing to import', {
          sub: work.message.sub,
          messageId: record.messageId,
        });
        return;
      }
      metrics.addMetric(result.outcome === 'enabled' ? WORKER_METRIC.imported : WORKER_METRIC.alreadyImported, MetricUnit.Count, 1);
      logger.info(result.outcome === 'enabled' ? 'user imported' : 'user already imported', {
        sub: message.sub,
        messageId: record.messageId,
        trayUserId: result.entry.trayUserId,
        instanceId: result.entry.instanceId,
      });
    } catch (e) {
      // A record that was never started is never dead-lettered, even on the last delivery.
      if (e instanceof NotHandedBack) throw e.reason;
      const error = asImportError(e, 'ledger');
      const user = { sub: message?.sub, userPoolId: message?.userPoolId, messageId: record.messageId, receiveCount, attempt };
      if (isFinal(error, lastAttempt)) {
        const final =
          error.kind === 'permanent'
            ? error
            : new ImportError(error.code, error.step, `gave up after ${attempt} attempts: ${error.message}`);
        let sent: Awaited<ReturnType<typeof sendToDeadLetterQueue>>;
        try {
          sent = await sendToDeadLetterQueue(sqs, options.dlqUrl, record, final, user);
        } catch (dlqError) {
          // Loud: the message stays on the queue (SQS's own redrive is the backstop, without a reason).
          metrics.addMetric(WORKER_METRIC.deadLetterFailed, MetricUnit.Count, 1);
          logger.error('could not dead-letter; the message stays on the queue', {
            ...user,
            error: asImportError(dlqError, 'deadLetter').toJSON(),
            original: final.toJSON(),
          });
          throw dlqError;
        }
        metrics.addMetric(WORKER_METRIC.deadLettered, MetricUnit.Count, 1);
        logger.error(
          sent.sent === 'reference'
            ? 'import failed; dead-lettered as a reference (the body was too big to send with its reason)'
            : 'import failed; message dead-lettered',
          { ...user, bytes: sent.bytes, error: final.toJSON() },
        );
        return;
      }
      const delay = retryDelaySeconds(attempt, options.retryBaseSeconds, options.retryMaxSeconds, options.random);
      await delayRedelivery(sqs, options.queueUrl, record, delay).catch((err: unknown) =>
        logger.warn('could not delay redelivery; SQS will redeliver after the queue visibility timeout', {
          ...user,
          error: (err as Error).name,
        }),
      );
      metrics.addMetric(WORKER_METRIC.retried, MetricUnit.Count, 1);
      logger.warn('import failed; will retry', { ...user, retryInSeconds: delay, error: error.toJSON() });
      throw error;
    }
  };

  /**
   * Starts the batch's records at once, up to `maxUsersInFlight`, while the invocation has time
   * for another user; the rest go back to the queue unstarted. All users in flight share the
   * pacer, whose waiters are served in turn, so they advance together and the pacer stays busy
   * to the end of the batch: the batch ends one Tray round trip after its last slot, instead of
   * with a tail of half-done users that cannot use the invocation's share. Tray's 2 s wait before
   * enabling costs nothing once a round of the batch's calls takes longer than that. Results are
   * in the order of the records, as the partial-batch middleware expects.
   */
  return async (event, context, masterToken) => {
    const deadline = Date.now() + context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS;
    const results: Promise<void>[] = [];
    // Observed at once: a record that fails while later ones are still being admitted must not
    // be an unhandled rejection (Lambda's runtime would fail the whole invocation); its outcome
    // is read from `results` below, in the order of the records.
    const track = (p: Promise<void>) => {
      p.catch(() => undefined);
      results.push(p);
    };
    let inFlight = 0;
    let freed: (() => void) | undefined;
    for (const record of event.Records) {
      while (inFlight >= options.maxUsersInFlight) await new Promise<void>((resolve) => (freed = resolve));
      if (Date.now() + expectedMs(inFlight) * START_MARGIN > deadline) {
        const reason = new ImportError(
          'OUT_OF_TIME',
          'ledger',
          'not enough time left in this invocation to start the import; handed back without counting as an attempt',
        );
        track(handBack(record, reason, 0));
        continue;
      }
      inFlight += 1;
      track(
        processRecord(record, context, masterToken, deadline).finally(() => {
          inFlight -= 1;
          freed?.();
        }),
      );
    }
    return Promise.allSettled(results);
  };
}

/** A record that was not started and could not be put back on the queue: SQS redelivers it. */
class NotHandedBack extends Error {
  constructor(readonly reason: ImportError) {
    super(reason.message);
    this.name = 'NotHandedBack';
  }
}

/**
 * Parses the body; an invalid message whose user can still be identified (a well-formed pool id
 * and sub) gets a ledger entry with the reason, like every other dead-lettered user.
 */
async function parseMessageRecordingRejection(body: string, ledger: Ledger): Promise<WorkMessage> {
  try {
    return parseWorkMessage(body);
  } catch (e) {
    // Only an import message that cannot be read fails the user's import; a bad lifecycle
    // message is dead-lettered with its reason and leaves the user's entry alone.
    const key = body.includes('"kind"') ? undefined : identifiableUser(body);
    // The ledger being down must not hide the message's own problem.
    if (key && e instanceof ImportError) await ledger.recordRejected(key, {}, e).catch(() => undefined);
    throw e;
  }
}

function identifiableUser(body: string): UserKey | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return undefined;
  }
  const key = QueueMessageSchema.pick({ userPoolId: true, sub: true }).loose().safeParse(raw);
  if (!key.success) return undefined;
  return { userPoolId: key.data.userPoolId, sub: key.data.sub };
}
