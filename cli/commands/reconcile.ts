import type { LedgerStatusSummary } from '../../shared/ledger.js';
import type { QueueMessage } from '../../shared/message.js';
import { isImportable, listUsersPage, messageForUser } from '../cognito-users.js';
import { type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { chunks, type EnqueueFailure, Pacer, SendInterrupted, SQS_BATCH_SIZE, sendBatch } from '../enqueue.js';
import { CliError, EXIT } from '../toolkit/errors.js';
import { positiveNumber } from '../toolkit/flags.js';
import { emit, table, warn } from '../toolkit/output.js';
import { progress } from '../toolkit/progress.js';
import { type AttributeOptions, attributeNamesFor } from './attributes.js';
import { DEFAULT_BACKFILL_RATE } from './backfill.js';

/**
 * Finds the users the pipeline lost and enqueues them again (`source: 'reconcile'`), with their
 * attributes as Cognito has them now: confirmed in Cognito but absent from the ledger (the trigger
 * could not enqueue), `retrying` or `in_progress` without a lease (stuck) in the ledger, untouched
 * for longer than --older-than minutes. Users confirmed or changed within that window are left
 * alone too: their sign-up message (or retry) may still be in the queue.
 *
 * `failed` users (a permanent error: their message and its reason are in the DLQ) are skipped
 * unless --include-failed: re-enqueueing them on every run would only fail again, add DLQ copies
 * and fire the DLQ alarm. After fixing their cause (e.g. the user's attributes in Cognito),
 * `--include-failed` enqueues them with fresh attributes, which a DLQ redrive (the old message
 * body) would not.
 */
export interface ReconcileOptions extends GlobalOptions, AttributeOptions {
  userPoolId?: string;
  queueUrl?: string;
  table?: string;
  filter?: string;
  /** Import users who signed in through an identity provider (EXTERNAL_PROVIDER); default true. */
  federated?: boolean;
  olderThan?: number;
  rate?: number;
  dryRun?: boolean;
  /** Also re-enqueue users whose ledger status is `failed` (permanent error, message in the DLQ). */
  includeFailed?: boolean;
}

export interface ReconcileCandidate {
  sub: string;
  username: string;
  /** `stuck`: in progress, but no delivery holds its lease any more (e.g. SQS dead-lettered it after repeated crashes). */
  reason: 'missing' | 'failed' | 'retrying' | 'stuck';
  lastError?: LedgerStatusSummary['lastError'];
  since?: string | undefined;
}

export interface ReconcileSummary {
  userPoolId: string;
  dryRun: boolean;
  olderThanMinutes: number;
  includeFailed: boolean;
  listed: number;
  confirmed: number;
  recent: number;
  /** `failed` users left alone because --include-failed was not given. */
  failedSkipped: number;
  candidates: ReconcileCandidate[];
  enqueued: number;
  failed: EnqueueFailure[];
  invalid: string[];
  interrupted?: string | undefined;
}

/**
 * Twice the worker's default longest retry back-off (RETRY_MAX_SECONDS / retryMaxSeconds = 900 s,
 * i.e. 15 min): a `retrying` user last touched 15 minutes ago may still have its delayed redelivery
 * pending, and enqueueing it again then only races that retry. With a larger retryMaxSeconds in
 * the deploy config, pass an --older-than above it.
 */
export const DEFAULT_OLDER_THAN_MINUTES = 30;

export async function runReconcile(options: ReconcileOptions, deps?: CliDeps): Promise<CommandResult<ReconcileSummary>> {
  return withContext(options, deps, async (ctx) => {
    const userPoolId = await ctx.userPoolId(options.userPoolId);
    const attributeNames = attributeNamesFor(options, 'reconcile');
    const olderThan = positiveNumber(options.olderThan, '--older-than') ?? DEFAULT_OLDER_THAN_MINUTES;
    const rate = positiveNumber(options.rate, '--rate') ?? DEFAULT_BACKFILL_RATE;
    const queueUrl = options.dryRun ? '' : await ctx.setting('QueueUrl', options.queueUrl, '--queue-url');
    const ledger = await ctx.ledger(options.table);
    const cutoff = ctx.now() - olderThan * 60_000;

    const entries = new Map<string, LedgerStatusSummary>();
    for await (const entry of ledger.statuses(userPoolId)) entries.set(entry.sub, entry);

    const summary: ReconcileSummary = {
      userPoolId,
      dryRun: options.dryRun === true,
      olderThanMinutes: olderThan,
      includeFailed: options.includeFailed === true,
      listed: 0,
      confirmed: 0,
      recent: 0,
      failedSkipped: 0,
      candidates: [],
      enqueued: 0,
      failed: [],
      invalid: [],
    };
    const pacer = new Pacer(rate, ctx.now, ctx.sleep);
    const bar = progress(ctx.io, 'reconciling');
    let token: string | undefined;
    try {
      do {
        if (ctx.aborted) {
          summary.interrupted = 'aborted';
          break;
        }
        const page = await listUsersPage(ctx.cognito, userPoolId, options.filter, token);
        token = page.nextToken;
        summary.listed += page.users.length;
        bar.increment(page.users.length);
        const toSend: QueueMessage[] = [];
        for (const user of page.users) {
          if (!isImportable(user, { federated: options.federated })) continue;
          summary.confirmed++;
          const built = messageForUser(userPoolId, user, attributeNames, 'reconcile', new Date(ctx.now()));
          if ('problem' in built) {
            summary.invalid.push(built.problem);
            continue;
          }
          const { message } = built;
          const entry = entries.get(message.sub);
          let candidate: ReconcileCandidate | undefined;
          if (!entry) {
            const changed = user.UserLastModifiedDate?.getTime() ?? user.UserCreateDate?.getTime();
            if (changed !== undefined && changed > cutoff) summary.recent++;
            else
              candidate = {
                sub: message.sub,
                username: message.username,
                reason: 'missing',
                since: changed ? new Date(changed).toISOString() : undefined,
              };
          } else if (entry.status === 'failed' && !options.includeFailed) {
            summary.failedSkipped++;
          } else if (entry.status !== 'enabled' && entry.status !== 'offboarded') {
            // Offboarded users were deleted on purpose: never imported again.
            const stuck = entry.status === 'in_progress';
            if (stuck && (entry.leaseUntil ?? 0) > ctx.now()) continue; // a delivery is working on it right now
            if (Date.parse(entry.updatedAt) > cutoff) summary.recent++;
            else
              candidate = {
                sub: message.sub,
                username: message.username,
                reason: entry.status === 'in_progress' ? 'stuck' : entry.status,
                lastError: entry.lastError,
                since: entry.updatedAt,
              };
          }
          if (!candidate) continue;
          summary.candidates.push(candidate);
          toSend.push(message);
        }
        if (options.dryRun) continue;
        for (const batch of chunks(toSend, SQS_BATCH_SIZE)) {
          await pacer.take(batch.length);
          const outcome = await sendBatch(ctx.sqs, queueUrl, batch, { sleep: ctx.sleep });
          summary.enqueued += outcome.sent.length;
          summary.failed.push(...outcome.failed);
        }
      } while (token);
    } catch (e) {
      if (e instanceof CliError) throw e;
      summary.interrupted = e instanceof SendInterrupted ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
    } finally {
      bar.stop();
    }

    for (const problem of summary.invalid) warn(ctx.io, `skipped: ${problem}`);
    // A dry run that finds lost users reports them as failures found: usable as a scheduled check.
    const ok = !summary.interrupted && summary.failed.length === 0 && !(summary.dryRun && summary.candidates.length > 0);
    emit(
      ctx.io,
      ctx.json,
      summary,
      () => [
        summary.candidates.length > 0
          ? table(
              summary.candidates,
              [
                ['sub', (c) => c.sub],
                ['username', (c) => c.username],
                ['reason', (c) => c.reason],
                ['since', (c) => c.since],
                ['last error', (c) => (c.lastError ? `${c.lastError.code} at ${c.lastError.step}: ${c.lastError.message}` : undefined)],
              ],
              100,
            )
          : 'nothing to reconcile',
        ...summary.failed.map((f) => `FAILED ${f.sub} (${f.username}): ${f.reason}`),
        '',
        `${summary.confirmed} confirmed user(s) checked; ${summary.recent} changed in the last ${olderThan} min (left alone); ` +
          (summary.dryRun
            ? `dry run: ${summary.candidates.length} would be enqueued`
            : `${summary.enqueued} of ${summary.candidates.length} enqueued`),
        ...(summary.failedSkipped > 0
          ? [
              `${summary.failedSkipped} failed user(s) left alone (their message is in the DLQ: \`dlq list\`); after fixing the cause, --include-failed re-enqueues them with their current attributes`,
            ]
          : []),
        ...(summary.interrupted ? [`INTERRUPTED (${summary.interrupted}): rerun to finish (reconcile is safe to repeat)`] : []),
      ],
      ok,
    );
    return { exitCode: ok ? EXIT.ok : EXIT.failures, data: summary };
  });
}
