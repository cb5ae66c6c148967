import { DescribeUserPoolCommand } from '@aws-sdk/client-cognito-identity-provider';
import type { QueueMessage } from '../../shared/message.js';
import { defaultStatePath, newState, readState, writeState, type BackfillState } from '../backfill-state.js';
import { isConfirmed, listUsersPage, messageForUser } from '../cognito-users.js';
import { CliError, EXIT, positiveNumber, withContext, type CliContext, type CliDeps, type CommandResult, type GlobalOptions } from '../context.js';
import { chunks, Pacer, SendInterrupted, sendBatch, SQS_BATCH_SIZE, type EnqueueFailure } from '../enqueue.js';
import { emit, keyValues, note, progress, warn } from '../output.js';
import { attributeNamesFor, type AttributeOptions } from './attributes.js';

/**
 * Enqueues the users who registered before the pipeline existed (or were created by an
 * administrator, which never fires the trigger): every CONFIRMED user of the pool without an
 * `enabled` ledger entry, `source: 'backfill'`. Resumable through a state file (see
 * backfill-state.ts); a rerun never enqueues a user the state says was enqueued.
 */
export interface BackfillOptions extends GlobalOptions, AttributeOptions {
  userPoolId?: string;
  queueUrl?: string;
  table?: string;
  filter?: string;
  /** Users per second. */
  rate?: number;
  state?: string;
  /** Ignore (and replace) an existing state file. */
  restart?: boolean;
  dryRun?: boolean;
}

export interface BackfillSummary {
  userPoolId: string;
  dryRun: boolean;
  stateFile: string;
  resumed: boolean;
  pages: number;
  listed: number;
  notConfirmed: number;
  alreadyEnabled: number;
  alreadyEnqueued: number;
  invalid: { username: string | undefined; problem: string }[];
  enqueued: number;
  wouldEnqueue: number;
  failed: EnqueueFailure[];
  completed: boolean;
  interrupted?: string | undefined;
  /** Users enqueued over all runs of this state file. */
  enqueuedTotal: number;
}

export const DEFAULT_BACKFILL_RATE = 25;

export async function runBackfill(options: BackfillOptions, deps?: CliDeps): Promise<CommandResult<BackfillSummary>> {
  return withContext(options, deps, async (ctx) => {
    const userPoolId = await ctx.userPoolId(options.userPoolId);
    const attributeNames = attributeNamesFor(options, 'backfill');
    const rate = positiveNumber(options.rate, '--rate') ?? DEFAULT_BACKFILL_RATE;
    const queueUrl = options.dryRun ? '' : await ctx.setting('QueueUrl', options.queueUrl, '--queue-url');
    const ledger = await ctx.ledger(options.table);
    const statePath = options.state ?? defaultStatePath(userPoolId);
    const state = loadOrCreateState(ctx, options, userPoolId, statePath);
    const summary: BackfillSummary = {
      userPoolId, dryRun: options.dryRun === true, stateFile: statePath, resumed: state.paginationToken !== null || state.enqueued.length > 0,
      pages: 0, listed: 0, notConfirmed: 0, alreadyEnabled: 0, alreadyEnqueued: 0, invalid: [], enqueued: 0, wouldEnqueue: 0, failed: [], completed: false, enqueuedTotal: state.enqueuedTotal,
    };
    if (state.completed) {
      note(ctx.io, `${statePath} says this backfill completed at ${state.updatedAt}; pass --restart to run it again`);
      summary.completed = true;
      return finish(ctx, summary);
    }

    const enabled = new Set<string>();
    for await (const entry of ledger.statuses(userPoolId)) if (entry.status === 'enabled') enabled.add(entry.sub);
    const enqueued = new Set(state.enqueued);
    const save = () => {
      if (!options.dryRun) writeState(statePath, state, new Date(ctx.now()));
    };
    const pacer = new Pacer(rate, ctx.now, ctx.sleep);
    const bar = progress(ctx.io, options.dryRun ? 'counting users' : 'backfilling', await estimatedUsers(ctx, userPoolId));
    if (summary.resumed) note(ctx.io, `resuming from ${statePath} (${state.pagesDone} page(s) done, ${state.enqueuedTotal} user(s) enqueued so far)`);

    // Set after a page with users that could not be enqueued: the token no longer moves, so a rerun retries them.
    let frozen = false;
    let token = state.paginationToken ?? undefined;
    try {
      for (;;) {
        if (ctx.aborted) {
          summary.interrupted = 'aborted';
          break;
        }
        const page = await listUsersPage(ctx.cognito, userPoolId, options.filter, token);
        summary.pages++;
        summary.listed += page.users.length;
        const toSend: QueueMessage[] = [];
        const now = new Date(ctx.now());
        for (const user of page.users) {
          if (!isConfirmed(user)) {
            summary.notConfirmed++;
            continue;
          }
          const built = messageForUser(userPoolId, user, attributeNames, 'backfill', now);
          if ('problem' in built) summary.invalid.push({ username: user.Username, problem: built.problem });
          else if (enabled.has(built.message.sub)) summary.alreadyEnabled++;
          else if (enqueued.has(built.message.sub)) summary.alreadyEnqueued++;
          else toSend.push(built.message);
        }
        // Progress counts users done: skipped ones now, the others as their batch is sent (not when listed).
        bar.increment(options.dryRun ? page.users.length : page.users.length - toSend.length);

        let pageFailed = false;
        if (options.dryRun) summary.wouldEnqueue += toSend.length;
        else {
          for (const batch of chunks(toSend, SQS_BATCH_SIZE)) {
            if (ctx.aborted) break;
            await pacer.take(batch.length);
            const outcome = await sendBatch(ctx.sqs, queueUrl, batch, { sleep: ctx.sleep });
            bar.increment(batch.length);
            for (const m of outcome.sent) enqueued.add(m.sub);
            state.enqueued.push(...outcome.sent.map((m) => m.sub));
            state.enqueuedTotal += outcome.sent.length;
            summary.enqueued += outcome.sent.length;
            summary.failed.push(...outcome.failed);
            pageFailed ||= outcome.failed.length > 0;
            save();
          }
          if (ctx.aborted) {
            summary.interrupted = 'aborted';
            break;
          }
        }
        frozen ||= pageFailed;
        if (!frozen) {
          state.paginationToken = page.nextToken ?? null;
          state.pagesDone++;
          state.enqueued = [];
        }
        if (!page.nextToken) {
          state.completed = !frozen;
          summary.completed = !frozen;
          save();
          break;
        }
        save();
        token = page.nextToken;
      }
    } catch (e) {
      // A bad flag stays a usage error; anything else (the queue, Cognito throttling, the network) is an interruption to resume from.
      if (e instanceof CliError) throw e;
      summary.interrupted = e instanceof SendInterrupted ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
      save();
    } finally {
      bar.stop();
    }
    summary.enqueuedTotal = state.enqueuedTotal;
    return finish(ctx, summary);
  });
}

function loadOrCreateState(ctx: CliContext, options: BackfillOptions, userPoolId: string, path: string): BackfillState {
  const existing = options.restart ? undefined : readState(path);
  if (!existing) return newState(userPoolId, options.filter, new Date(ctx.now()));
  if (existing.userPoolId !== userPoolId) {
    throw new CliError(`--state ${path} belongs to user pool ${existing.userPoolId}, not ${userPoolId}; pass another --state FILE or --restart`);
  }
  if ((existing.filter ?? undefined) !== options.filter) {
    throw new CliError(`--state ${path} was made with --filter ${JSON.stringify(existing.filter)}; rerun with the same --filter, or pass --restart`);
  }
  return existing;
}

/** For the progress bar only; a pool that cannot be described just gets a counter. */
async function estimatedUsers(ctx: CliContext, userPoolId: string): Promise<number | undefined> {
  if (!ctx.io.stderrIsTTY) return undefined;
  try {
    return (await ctx.cognito.send(new DescribeUserPoolCommand({ UserPoolId: userPoolId }))).UserPool?.EstimatedNumberOfUsers;
  } catch {
    return undefined;
  }
}

function finish(ctx: CliContext, summary: BackfillSummary): CommandResult<BackfillSummary> {
  for (const i of summary.invalid) warn(ctx.io, `skipped: ${i.problem}`);
  const ok = summary.completed && !summary.interrupted && summary.failed.length === 0;
  const exitCode = ok || (summary.dryRun && !summary.interrupted) ? EXIT.ok : EXIT.failures;
  emit(ctx.io, ctx.json, summary, () => [
    keyValues({
      'user pool': summary.userPoolId,
      'pages listed': summary.pages,
      'users listed': summary.listed,
      'not confirmed (skipped)': summary.notConfirmed,
      'already imported (skipped)': summary.alreadyEnabled,
      'already enqueued (skipped)': summary.alreadyEnqueued,
      'invalid (skipped)': summary.invalid.length,
      ...(summary.dryRun ? { 'would enqueue': summary.wouldEnqueue } : { enqueued: summary.enqueued, 'enqueued over all runs': summary.enqueuedTotal }),
      'could not enqueue': summary.failed.length,
      'state file': summary.dryRun ? `${summary.stateFile} (not written: dry run)` : summary.stateFile,
    }),
    ...summary.failed.map((f) => `FAILED ${f.sub} (${f.username}): ${f.reason}`),
    '',
    summary.interrupted
      ? `INTERRUPTED (${summary.interrupted}): rerun the same command to resume`
      : summary.failed.length > 0
        ? `${summary.failed.length} user(s) could not be enqueued: rerun the same command to retry them`
        : summary.dryRun
          ? 'dry run: nothing was sent'
          : 'backfill complete',
  ], exitCode === EXIT.ok);
  return { exitCode, data: summary };
}
