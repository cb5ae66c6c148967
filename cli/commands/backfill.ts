import { DescribeUserPoolCommand } from '@aws-sdk/client-cognito-identity-provider';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { QueueMessage } from '../../shared/message.js';
import { CLI_RATE_PER_SECOND, DEFAULT_TRAY_BUDGET_PER_SECOND } from '../../shared/tray/pacer.js';
import { type BackfillState, defaultStatePath, newState, readState, writeState } from '../backfill-state.js';
import { isImportable, listUsersPage, messageForUser } from '../cognito-users.js';
import { type CliContext, type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { chunks, type EnqueueFailure, Pacer, SendInterrupted, SQS_BATCH_SIZE, sendBatch } from '../enqueue.js';
import { CliError, EXIT } from '../toolkit/errors.js';
import { loadPlan, positiveNumber } from '../toolkit/flags.js';
import { emit, keyValues, note, warn } from '../toolkit/output.js';
import { progress } from '../toolkit/progress.js';
import { type AttributeOptions, attributeNamesFor } from './attributes.js';

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
  /** Import users who signed in through an identity provider (EXTERNAL_PROVIDER); default true. */
  federated?: boolean;
  /** Users per second; at most what the fleet drains (the default). */
  rate?: number;
  /** The deployment's trayBudgetPerSecond (default: the stack output TrayBudgetPerSecond, else 25). */
  trayBudget?: number;
  /** Enqueue at most this many users in this run (the state file resumes from there). */
  maxUsers?: number;
  /** Wait while the import queue holds more messages than this (default: ten minutes of draining). */
  maxQueueDepth?: number;
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
  pace: BackfillPace;
  /** The run stopped at --max-users (or at what the queue's retention allows): rerun to go on. */
  limitReached?: 'max-users' | 'retention' | undefined;
  /** Dry run: why the real run would be refused (its ETA exceeds the queue's retention). */
  wouldRefuse?: string | undefined;
}

/**
 * What the deployed fleet drains, and so how fast a backfill may enqueue. The worker fleet makes
 * at most (budget − the CLI's reserve) Tray calls per second, and a fresh user costs 4 + one per
 * auth of the plan (shared/import-workflow.ts): enqueueing faster only makes the queue grow, and
 * the queue deletes messages older than its retention period (4 days) without a word.
 */
export interface BackfillPace {
  trayBudgetPerSecond: number;
  budgetFrom: 'flag' | 'stack output' | 'default';
  callsPerUser: number;
  callsFrom: 'plan' | 'stack output' | 'assumed';
  /** Users per second the fleet imports at most. */
  drainPerSecond: number;
  /** Users per second this run enqueues (≤ drainPerSecond). */
  usersPerSecond: number;
  retentionSeconds: number;
  retentionFrom: 'queue' | 'assumed';
  /** Users this run may enqueue: what drains within RETENTION_SAFETY of the retention period. */
  withinRetention: number;
  /** Users expected to be enqueued (a pool estimate, or the dry run's exact count), when known. */
  expectedUsers?: number | undefined;
  etaSeconds?: number | undefined;
  maxQueueDepth: number;
  /** Times the run waited for the queue to drain below maxQueueDepth. */
  depthWaits: number;
}

/** `reconcile`'s enqueue rate (reconcile enqueues few users; backfill paces itself by the drain rate instead). */
export const DEFAULT_BACKFILL_RATE = 25;

/** The import queue's retention (infra/constructs/import-queues.ts), when the queue cannot be asked. */
export const ASSUMED_QUEUE_RETENTION_SECONDS = 4 * 24 * 3600;
/** A backfill must be drained within this share of the retention period: the estimate of the drain rate is an upper bound. */
export const RETENTION_SAFETY = 0.8;
/** Tray calls one fresh user costs besides one per auth (shared/import-workflow.ts). */
export const TRAY_CALLS_PER_USER_BASE = 4;
/** Default queue depth bound: this many seconds of draining. */
const QUEUE_DEPTH_SECONDS = 600;
/** How often the queue's depth is read while enqueueing, and how long to wait when it is too deep. */
export const DEPTH_CHECK_MS = 30_000;
/** How often a progress line is printed (stderr) besides the progress bar. */
const PROGRESS_NOTE_MS = 5 * 60_000;

export async function runBackfill(options: BackfillOptions, deps?: CliDeps): Promise<CommandResult<BackfillSummary>> {
  return withContext(options, deps, async (ctx) => {
    const userPoolId = await ctx.userPoolId(options.userPoolId);
    const attributeNames = attributeNamesFor(options, 'backfill');
    const requestedRate = positiveNumber(options.rate, '--rate');
    const maxUsers = positiveNumber(options.maxUsers, '--max-users', { integer: true });
    const queueUrl = options.dryRun
      ? ((await ctx.optionalSetting('QueueUrl', options.queueUrl)) ?? '')
      : await ctx.setting('QueueUrl', options.queueUrl, '--queue-url');
    const pace = await paceFor(ctx, options, queueUrl, requestedRate);
    const ledger = await ctx.ledger(options.table);
    const statePath = options.state ?? defaultStatePath(userPoolId);
    const state = loadOrCreateState(ctx, options, userPoolId, statePath);
    const summary: BackfillSummary = {
      userPoolId,
      dryRun: options.dryRun === true,
      stateFile: statePath,
      resumed: state.paginationToken !== null || state.enqueued.length > 0,
      pages: 0,
      listed: 0,
      notConfirmed: 0,
      alreadyEnabled: 0,
      alreadyEnqueued: 0,
      invalid: [],
      enqueued: 0,
      wouldEnqueue: 0,
      failed: [],
      completed: false,
      enqueuedTotal: state.enqueuedTotal,
      pace,
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
    // Users this run may enqueue: --max-users, and never more than drains within the retention period.
    const limit = Math.min(maxUsers ?? Number.POSITIVE_INFINITY, pace.withinRetention);
    if (!options.dryRun) {
      const poolUsers = await estimatedUsers(ctx, userPoolId);
      // EstimatedNumberOfUsers counts the whole pool (unconfirmed users too): an upper bound, useless with a filter.
      if (poolUsers !== undefined && options.filter === undefined) {
        pace.expectedUsers = Math.min(Math.max(0, poolUsers - enabled.size), maxUsers ?? Number.POSITIVE_INFINITY);
        pace.etaSeconds = pace.expectedUsers / pace.usersPerSecond;
        if (pace.expectedUsers > pace.withinRetention) throw retentionRefusal(pace, 'about');
      }
      note(ctx.io, paceLine(pace, maxUsers));
    }
    const pacer = new Pacer(pace.usersPerSecond, ctx.now, ctx.sleep);
    const started = ctx.now();
    let lastNote = started;
    let lastDepthCheck = Number.NEGATIVE_INFINITY;
    const bar = progress(ctx.io, options.dryRun ? 'counting users' : 'backfilling', ctx.io.stderrIsTTY ? pace.expectedUsers : undefined);
    if (summary.resumed)
      note(ctx.io, `resuming from ${statePath} (${state.pagesDone} page(s) done, ${state.enqueuedTotal} user(s) enqueued so far)`);

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
          if (!isImportable(user, { federated: options.federated })) {
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

        // Past the limit, the rest of the page waits for the next run: the token stays, the sent users are remembered.
        const allowance = limit - summary.enqueued;
        const cut = !options.dryRun && toSend.length > allowance;
        if (cut) {
          bar.increment(toSend.length - Math.max(0, allowance));
          toSend.splice(Math.max(0, allowance));
        }

        let pageFailed = false;
        if (options.dryRun) summary.wouldEnqueue += toSend.length;
        else {
          for (const batch of chunks(toSend, SQS_BATCH_SIZE)) {
            if (ctx.aborted) break;
            if (ctx.now() - lastDepthCheck >= DEPTH_CHECK_MS) {
              await waitForQueueDepth(ctx, queueUrl, pace);
              lastDepthCheck = ctx.now();
              if (ctx.aborted) break;
            }
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
            if (ctx.now() - lastNote >= PROGRESS_NOTE_MS) {
              lastNote = ctx.now();
              note(ctx.io, progressLine(summary.enqueued, pace, (ctx.now() - started) / 1000));
            }
          }
          if (ctx.aborted) {
            summary.interrupted = 'aborted';
            break;
          }
        }
        frozen ||= pageFailed || cut;
        if (cut) {
          summary.limitReached = maxUsers !== undefined && limit === maxUsers ? 'max-users' : 'retention';
          save();
          break;
        }
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
    if (options.dryRun) {
      // The exact count: the ETA, and the refusal the real run would meet.
      pace.expectedUsers = Math.min(summary.wouldEnqueue, maxUsers ?? Number.POSITIVE_INFINITY);
      pace.etaSeconds = pace.expectedUsers / pace.usersPerSecond;
      if (summary.wouldEnqueue > limit)
        summary.wouldRefuse = retentionRefusal({ ...pace, expectedUsers: summary.wouldEnqueue }, 'exactly').message;
    }
    return finish(ctx, summary);
  });
}

function loadOrCreateState(ctx: CliContext, options: BackfillOptions, userPoolId: string, path: string): BackfillState {
  const existing = options.restart ? undefined : readState(path);
  if (!existing) return newState(userPoolId, options.filter, new Date(ctx.now()));
  if (existing.userPoolId !== userPoolId) {
    throw new CliError(
      `--state ${path} belongs to user pool ${existing.userPoolId}, not ${userPoolId}; pass another --state FILE or --restart`,
    );
  }
  if ((existing.filter ?? undefined) !== options.filter) {
    throw new CliError(
      `--state ${path} was made with --filter ${JSON.stringify(existing.filter)}; rerun with the same --filter, or pass --restart`,
    );
  }
  return existing;
}

/** The pool's EstimatedNumberOfUsers: the ETA check and the progress bar; a pool that cannot be described gets neither. */
async function estimatedUsers(ctx: CliContext, userPoolId: string): Promise<number | undefined> {
  try {
    return (await ctx.cognito.send(new DescribeUserPoolCommand({ UserPoolId: userPoolId }))).UserPool?.EstimatedNumberOfUsers;
  } catch {
    return undefined;
  }
}

/**
 * The budget (flag, else the stack's output when the resources come from the stack, else the
 * default), the calls per user (the plan, else the stack's output, else 4 + 1 auth), and the
 * queue's retention (asked from the queue, else the stack's 4 days).
 */
async function paceFor(
  ctx: CliContext,
  options: BackfillOptions,
  queueUrl: string,
  requestedRate: number | undefined,
): Promise<BackfillPace> {
  // With --queue-url the operator names the resources: the stack's outputs are not read for the pace either.
  const fromStack = async (key: 'TrayBudgetPerSecond' | 'TrayCallsPerUser'): Promise<number | undefined> => {
    if (options.queueUrl) return undefined;
    const value = Number(await ctx.optionalSetting(key, undefined));
    return Number.isFinite(value) && value > 0 ? value : undefined;
  };
  let trayBudgetPerSecond = positiveNumber(options.trayBudget, '--tray-budget');
  let budgetFrom: BackfillPace['budgetFrom'] = 'flag';
  if (trayBudgetPerSecond === undefined) {
    const output = await fromStack('TrayBudgetPerSecond');
    trayBudgetPerSecond = output ?? DEFAULT_TRAY_BUDGET_PER_SECOND;
    budgetFrom = output === undefined ? 'default' : 'stack output';
  }
  if (trayBudgetPerSecond <= CLI_RATE_PER_SECOND) {
    throw new CliError(
      `--tray-budget ${trayBudgetPerSecond} leaves the workers nothing after the CLI's reserve of ${CLI_RATE_PER_SECOND}/s: pass the deployment's trayBudgetPerSecond`,
    );
  }
  let callsPerUser: number;
  let callsFrom: BackfillPace['callsFrom'];
  if (options.plan) {
    callsPerUser = TRAY_CALLS_PER_USER_BASE + loadPlan(options.plan).auths.length;
    callsFrom = 'plan';
  } else {
    const output = await fromStack('TrayCallsPerUser');
    callsPerUser = output ?? TRAY_CALLS_PER_USER_BASE + 1;
    callsFrom = output === undefined ? 'assumed' : 'stack output';
  }
  const drainPerSecond = (trayBudgetPerSecond - CLI_RATE_PER_SECOND) / callsPerUser;
  if (requestedRate !== undefined && requestedRate > drainPerSecond) {
    warn(
      ctx.io,
      `--rate ${requestedRate} is faster than the fleet drains (${round(drainPerSecond)} users/s): enqueueing at ${round(drainPerSecond)} users/s`,
    );
  }
  const usersPerSecond = Math.min(requestedRate ?? drainPerSecond, drainPerSecond);

  let retentionSeconds = ASSUMED_QUEUE_RETENTION_SECONDS;
  let retentionFrom: BackfillPace['retentionFrom'] = 'assumed';
  if (queueUrl) {
    try {
      const attributes = await ctx.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['MessageRetentionPeriod'] }),
      );
      const seconds = Number(attributes.Attributes?.MessageRetentionPeriod);
      if (Number.isFinite(seconds) && seconds > 0) {
        retentionSeconds = seconds;
        retentionFrom = 'queue';
      }
    } catch {
      // Not allowed or not reachable: the stack's retention is assumed (and said so).
    }
  }
  const maxQueueDepth =
    positiveNumber(options.maxQueueDepth, '--max-queue-depth', { integer: true }) ??
    Math.max(SQS_BATCH_SIZE, Math.ceil(drainPerSecond * QUEUE_DEPTH_SECONDS));
  return {
    trayBudgetPerSecond,
    budgetFrom,
    callsPerUser,
    callsFrom,
    drainPerSecond,
    usersPerSecond,
    retentionSeconds,
    retentionFrom,
    // The slower of enqueueing and draining decides when the last user is imported.
    withinRetention: Math.floor(usersPerSecond * retentionSeconds * RETENTION_SAFETY),
    maxQueueDepth,
    depthWaits: 0,
  };
}

/**
 * Waits while the import queue holds more than maxQueueDepth waiting messages: sign-ups, retries
 * or a slower Tray keep the fleet below its budget, and pacing alone would then let the queue grow.
 */
async function waitForQueueDepth(ctx: CliContext, queueUrl: string, pace: BackfillPace): Promise<void> {
  let said = false;
  for (;;) {
    let depth: number;
    try {
      const out = await ctx.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
      );
      depth = Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
    } catch {
      return; // Cannot read the depth (permissions): the pacing alone holds the rate.
    }
    if (!(depth > pace.maxQueueDepth) || ctx.aborted) return;
    if (!said)
      note(
        ctx.io,
        `the import queue holds ${depth} messages (> --max-queue-depth ${pace.maxQueueDepth}): waiting for the workers to drain it`,
      );
    said = true;
    pace.depthWaits++;
    await ctx.sleep(DEPTH_CHECK_MS);
  }
}

function retentionRefusal(pace: BackfillPace, how: 'about' | 'exactly'): CliError {
  const users = pace.expectedUsers ?? 0;
  return new CliError(
    `refusing to backfill ${how === 'about' ? 'about ' : ''}${users} users: at ${round(pace.usersPerSecond)} users/s ` +
      `(Tray budget ${pace.trayBudgetPerSecond}/s − the CLI's ${CLI_RATE_PER_SECOND}/s, ${pace.callsPerUser} calls per user) the workers need ${duration(users / pace.usersPerSecond)}, ` +
      `more than ${Math.round(RETENTION_SAFETY * 100)} % of the queue's ${duration(pace.retentionSeconds)} retention (${pace.withinRetention} users): ` +
      `messages not imported by then are deleted without a trace. Split it: --max-users ${pace.withinRetention} (rerun the same command after the queue drains to go on), ` +
      `or a narrower --filter; or raise the deployment's trayBudgetPerSecond and pass it with --tray-budget`,
    EXIT.failures,
  );
}

function paceLine(pace: BackfillPace, maxUsers: number | undefined): string {
  const source = `budget ${pace.trayBudgetPerSecond}/s (${pace.budgetFrom}), ${pace.callsPerUser} Tray calls per user (${pace.callsFrom})`;
  const eta =
    pace.expectedUsers !== undefined
      ? `; about ${pace.expectedUsers} users, ETA ${duration(pace.etaSeconds ?? 0)}`
      : '; number of users unknown (--filter or no pool estimate)';
  const limit =
    maxUsers !== undefined
      ? `; at most ${Math.min(maxUsers, pace.withinRetention)} users this run`
      : `; at most ${pace.withinRetention} users this run (${Math.round(RETENTION_SAFETY * 100)} % of the queue's ${duration(pace.retentionSeconds)} retention)`;
  return `enqueueing at ${round(pace.usersPerSecond)} users/s, what the workers drain at ${source}${eta}${limit}`;
}

function progressLine(enqueued: number, pace: BackfillPace, elapsedSeconds: number): string {
  const left = pace.expectedUsers !== undefined ? Math.max(0, pace.expectedUsers - enqueued) : undefined;
  return `${enqueued} users enqueued in ${duration(elapsedSeconds)}${left !== undefined ? `, about ${left} left, ETA ${duration(left / pace.usersPerSecond)}` : ''}`;
}

/** Two decimals, or three significant digits below 1 (a tiny budget must not print "0 users/s"). */
const round = (n: number) => (n >= 1 ? Math.round(n * 100) / 100 : Number(n.toPrecision(3)));

/** "3 d 4 h", "4 d", "2 h 5 min", "12 min", "40 s". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 86_400) {
    const hours = Math.floor((s % 86_400) / 3600);
    return `${Math.floor(s / 86_400)} d${hours > 0 ? ` ${hours} h` : ''}`;
  }
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.round(s / 60)} min`;
  return `${s} s`;
}

function finish(ctx: CliContext, summary: BackfillSummary): CommandResult<BackfillSummary> {
  for (const i of summary.invalid) warn(ctx.io, `skipped: ${i.problem}`);
  const ok =
    (summary.completed || summary.limitReached === 'max-users') &&
    !summary.interrupted &&
    summary.failed.length === 0 &&
    !summary.wouldRefuse;
  const exitCode = ok || (summary.dryRun && !summary.interrupted && !summary.wouldRefuse) ? EXIT.ok : EXIT.failures;
  const pace = summary.pace;
  emit(
    ctx.io,
    ctx.json,
    summary,
    () => [
      keyValues({
        'user pool': summary.userPoolId,
        'pages listed': summary.pages,
        'users listed': summary.listed,
        'skipped by status (unconfirmed, or --no-federated)': summary.notConfirmed,
        'already imported (skipped)': summary.alreadyEnabled,
        'already enqueued (skipped)': summary.alreadyEnqueued,
        'invalid (skipped)': summary.invalid.length,
        ...(summary.dryRun
          ? { 'would enqueue': summary.wouldEnqueue }
          : { enqueued: summary.enqueued, 'enqueued over all runs': summary.enqueuedTotal }),
        'could not enqueue': summary.failed.length,
        pace: `${round(pace.usersPerSecond)} users/s (the workers drain ${round(pace.drainPerSecond)}/s at a Tray budget of ${pace.trayBudgetPerSecond}/s, ${pace.callsPerUser} calls per user)`,
        ...(summary.dryRun
          ? {
              ETA: `${duration((pace.expectedUsers ?? 0) / pace.usersPerSecond)} for ${pace.expectedUsers ?? 0} users (queue retention ${duration(pace.retentionSeconds)}${pace.retentionFrom === 'assumed' ? ', assumed' : ''})`,
            }
          : {}),
        ...(pace.depthWaits > 0 ? { 'waited for the queue to drain': `${pace.depthWaits} × ${DEPTH_CHECK_MS / 1000} s` } : {}),
        'state file': summary.dryRun ? `${summary.stateFile} (not written: dry run)` : summary.stateFile,
      }),
      ...summary.failed.map((f) => `FAILED ${f.sub} (${f.username}): ${f.reason}`),
      '',
      summary.interrupted
        ? `INTERRUPTED (${summary.interrupted}): rerun the same command to resume`
        : summary.limitReached
          ? `stopped after ${summary.enqueued} user(s) (${summary.limitReached === 'max-users' ? '--max-users' : `what drains within ${Math.round(RETENTION_SAFETY * 100)} % of the queue's retention`}): rerun the same command once the queue has drained to go on`
          : summary.failed.length > 0
            ? `${summary.failed.length} user(s) could not be enqueued: rerun the same command to retry them`
            : summary.dryRun
              ? summary.wouldRefuse
                ? `dry run: nothing was sent; the backfill would be refused: ${summary.wouldRefuse}`
                : 'dry run: nothing was sent'
              : 'backfill complete',
    ],
    exitCode === EXIT.ok,
  );
  return { exitCode, data: summary };
}
