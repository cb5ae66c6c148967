import {
  CancelMessageMoveTaskCommand,
  DeleteMessageCommand,
  ListMessageMoveTasksCommand,
  type ListMessageMoveTasksResultEntry,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import type { DeadLetter } from '../../shared/dead-letter.js';
import type { Ledger } from '../../shared/ledger.js';
import { checkCause } from '../cause-check.js';
import { type CliContext, type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { addLedgerErrors, DlqScanner, type HeldMessage, queueDepth } from '../dlq-messages.js';
import { Pacer } from '../enqueue.js';
import { CliError, classifyAwsError, EXIT } from '../toolkit/errors.js';
import { positiveNumber } from '../toolkit/flags.js';
import { emit, keyValues, table, warn } from '../toolkit/output.js';
import { progress } from '../toolkit/progress.js';
import { ledgerIfKnown } from './dlq.js';

/**
 * Moving dead-lettered messages back to the import queue once their cause is fixed.
 * - No filter: one SQS message move task (StartMessageMoveTask), which SQS runs by itself.
 *   The destination is the import queue's ARN, given explicitly: the worker dead-letters by
 *   sending to the DLQ, and such messages have no "original source queue" for SQS to return them to.
 * - `--user` / `--error-code`: only the matching messages, by receive → send the unchanged body
 *   (without the error attributes) → delete from the DLQ. A message is deleted only after its
 *   send succeeded; everything not moved is made visible again.
 */
export const MAX_MOVE_RATE = 500;
/** Seconds a scanned message stays hidden during a selective move (a scan that outlives it ends early: rerun). */
export const MOVE_HOLD_SECONDS = 300;

export interface RedriveOptions extends GlobalOptions {
  dlqUrl?: string;
  dlqArn?: string;
  queueUrl?: string;
  queueArn?: string;
  table?: string;
  rate?: number;
  user?: string[];
  errorCode?: string[];
  max?: number;
  dryRun?: boolean;
  /** Move messages whose cause still holds. */
  force?: boolean;
  /** Seconds to keep watching the DLQ after moving, for moved users that fail again. */
  watch?: number;
}

export interface RedriveFailure {
  message: DeadLetter;
  stage: 'send' | 'delete';
  reason: string;
}

export type RedriveOutcomeKind =
  | 'moved'
  | 'refreshed'
  | 'would move'
  | 'would refresh'
  | 'cause still holds'
  | 'sent during this run'
  | 'duplicate'
  | 'reference only'
  | 'failed';

export interface RedriveOutcome {
  message: DeadLetter;
  outcome: RedriveOutcomeKind;
  note?: string | undefined;
}

export interface RedriveResult {
  mode: 'move-task' | 'selective';
  dryRun: boolean;
  taskHandle?: string | undefined;
  sourceArn?: string;
  destinationArn?: string;
  /** Messages the DLQ held when the run started (visible, in flight, delayed); the scan stops after seeing that many. */
  expected?: number | undefined;
  scanned?: number;
  matched?: DeadLetter[];
  moved?: number;
  /** What happened to each matching message. */
  outcomes?: RedriveOutcome[];
  /** Matching messages left in the DLQ on purpose (cause still holds, arrived during the run, duplicate). */
  skipped?: number;
  /** Users this run moved whose message came back into the DLQ while it ran. */
  failedAgain?: DeadLetter[];
  failed?: RedriveFailure[];
}

export async function runRedrive(options: RedriveOptions, deps?: CliDeps): Promise<CommandResult<RedriveResult>> {
  // An empty filter must never widen into "everything": `--user "$SUB"` with an unset variable would move the whole DLQ.
  for (const [flag, values] of [
    ['--user', options.user],
    ['--error-code', options.errorCode],
  ] as const) {
    if (values !== undefined && values.filter((v) => v.trim() !== '').length === 0) {
      throw new CliError(
        `${flag} is empty; give a value (e.g. ${flag === '--user' ? '--user 3f1c2a9e-...' : '--error-code TRAY_UNAVAILABLE'}), or leave ${flag} out to move every message`,
      );
    }
  }
  return withContext(options, deps, async (ctx) => {
    const rate = positiveNumber(options.rate, '--rate', { max: MAX_MOVE_RATE, integer: true });
    const filtered = (options.user?.length ?? 0) > 0 || (options.errorCode?.length ?? 0) > 0;
    if (!filtered && !options.dryRun) {
      if (options.max !== undefined)
        throw new CliError('--max applies to selective moves (--user, --error-code) and --dry-run; a move task moves every message');
      if (options.watch !== undefined)
        throw new CliError('--watch applies to selective moves (--user, --error-code); follow a move task with `redrive status`');
      return startMoveTask(ctx, options, rate);
    }
    return selectiveMove(ctx, options, rate);
  });
}

async function startMoveTask(ctx: CliContext, options: RedriveOptions, rate: number | undefined): Promise<CommandResult<RedriveResult>> {
  const sourceArn = await ctx.setting('DeadLetterQueueArn', options.dlqArn, '--dlq-arn');
  const destinationArn = await ctx.setting('QueueArn', options.queueArn, '--queue-arn');
  let taskHandle: string | undefined;
  try {
    const out = await ctx.sqs.send(
      new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn, MaxNumberOfMessagesPerSecond: rate }),
    );
    taskHandle = out.TaskHandle;
  } catch (e) {
    throw await moveTaskError(ctx, sourceArn, e as Error);
  }
  const data: RedriveResult = { mode: 'move-task', dryRun: false, taskHandle, sourceArn, destinationArn };
  emit(ctx.io, ctx.json, data, () => [
    `started moving every message of ${sourceArn} to ${destinationArn}${rate ? ` at up to ${rate} messages/second` : ''}`,
    `task handle: ${taskHandle ?? '-'}`,
    'follow it with `redrive status`; stop it with `redrive cancel`',
  ]);
  return { exitCode: EXIT.ok, data };
}

/** Why StartMessageMoveTask failed: the "one task per DLQ" hint only when a task is in fact running. */
async function moveTaskError(ctx: CliContext, sourceArn: string, e: Error): Promise<Error> {
  const base = `StartMessageMoveTask failed: ${e.name}: ${e.message}`;
  let running: MoveTask | undefined;
  try {
    running = (await listTasks(ctx, sourceArn)).find((t) => t.status === 'RUNNING');
  } catch {
    // Cannot tell; the plain error is all we know.
  }
  if (running) {
    return new CliError(
      `${base}. A move task is already running for this DLQ (${running.moved ?? 0}/${running.toMove ?? '?'} moved, handle ${running.taskHandle ?? '?'}); only one may run at a time: wait for it (\`redrive status\`) or \`redrive cancel\` it`,
      EXIT.failures,
    );
  }
  return classifyAwsError(
    e,
    base,
    'check --dlq-arn / --queue-arn (the stack outputs DeadLetterQueueArn and QueueArn), --region, and your permissions sqs:StartMessageMoveTask',
  );
}

/** Seconds a message stays hidden while a dry run looks at it (released at the end either way). */
const DRY_RUN_HOLD_SECONDS = 30;

async function selectiveMove(ctx: CliContext, options: RedriveOptions, rate: number | undefined): Promise<CommandResult<RedriveResult>> {
  const dlqUrl = await ctx.setting('DeadLetterQueueUrl', options.dlqUrl, '--dlq-url');
  const queueUrl = options.dryRun ? undefined : await ctx.setting('QueueUrl', options.queueUrl, '--queue-url');
  const watchSeconds =
    options.watch === undefined || options.watch === 0 ? 0 : (positiveNumber(options.watch, '--watch', { max: 900 }) as number);
  const users = new Set((options.user ?? []).filter((u) => u.trim() !== ''));
  const codes = new Set((options.errorCode ?? []).filter((c) => c.trim() !== ''));
  const matches = (m: DeadLetter) =>
    (users.size === 0 || (m.sub !== undefined && users.has(m.sub)) || (m.username !== undefined && users.has(m.username))) &&
    (codes.size === 0 || (m.errorCode !== undefined && codes.has(m.errorCode)));

  const max = positiveNumber(options.max, '--max', { integer: true }) ?? 10_000;
  // The run's horizon: what the DLQ held when it started. Anything sent later (a message this run
  // moved that failed again, a new failure) is reported, never moved: every run ends, and moves
  // each message at most once.
  const startedAt = ctx.now();
  const expected = await queueDepth(ctx.sqs, dlqUrl);
  const scanner = new DlqScanner(ctx.sqs, dlqUrl, {
    holdSeconds: options.dryRun ? DRY_RUN_HOLD_SECONDS : MOVE_HOLD_SECONDS,
    waitSeconds: ctx.receiveWaitSeconds,
    max,
    startedAt,
    expected,
  });
  const pacer = new Pacer(rate, ctx.now, ctx.sleep);
  const bar = progress(ctx.io, options.dryRun ? 'scanning the DLQ' : 'redriving', expected);
  const matched: DeadLetter[] = [];
  const outcomes: RedriveOutcome[] = [];
  const failedAgain: DeadLetter[] = [];
  const failed: RedriveFailure[] = [];
  const movedSubs = new Set<string>();
  const movedBodies = new Set<string>();
  let scanned = 0;
  let moved = 0;
  let notReleased = 0;
  let ledger: Promise<Ledger | undefined> | undefined;

  /** A message that entered the DLQ during this run: a moved user failing again, or someone else. */
  const arrived = (held: HeldMessage) => {
    if (held.info.sub !== undefined && movedSubs.has(held.info.sub)) failedAgain.push(held.info);
    else if (matches(held.info))
      outcomes.push({
        message: held.info,
        outcome: 'sent during this run',
        note: 'entered the DLQ after this run started; run redrive again for it',
      });
  };

  try {
    for await (const batch of scanner.batches()) {
      scanned += batch.length;
      // Messages moved by SQS's own redrive carry no error code: the ledger knows it.
      const infos = batch.map((m) => m.info);
      if (codes.size > 0 && infos.some((m) => m.origin === 'sqs-redrive')) {
        ledger ??= ledgerIfKnown(ctx, options.table, infos);
        await addLedgerErrors(infos, await ledger);
      }
      for (const held of batch) {
        bar.increment();
        if (held.newer) {
          arrived(held);
          continue;
        }
        if (!matches(held.info)) continue;
        matched.push(held.info);
        if (movedBodies.has(held.body)) {
          outcomes.push({ message: held.info, outcome: 'duplicate', note: 'the same message was moved by this run already' });
          continue;
        }
        if (held.info.truncatedReference) {
          // Too big to dead-letter whole: only a reference was kept, which the worker cannot import.
          outcomes.push({
            message: held.info,
            outcome: 'reference only',
            note: `dead-lettered as a reference (the message was too big); enqueue the user afresh: import-user ${held.info.sub ?? 'SUB'} --enqueue`,
          });
          continue;
        }
        const cause = await checkCause(ctx, held.info, held.body);
        if (cause?.holds && !options.force) {
          outcomes.push({
            message: held.info,
            outcome: 'cause still holds',
            note: `${cause.note}; left in the DLQ (--force moves it anyway)`,
          });
          continue;
        }
        const body = cause?.freshBody ?? held.body;
        // Say so when nothing was checked: the operator vouches for the fix.
        const causeNote =
          cause?.note ?? (held.info.errorCode ? `cause not checked for ${held.info.errorCode}: fixed as its reason says?` : undefined);
        if (options.dryRun) {
          outcomes.push({ message: held.info, outcome: cause?.freshBody ? 'would refresh' : 'would move', note: causeNote });
          continue;
        }
        await pacer.take(1);
        if (await moveOne(ctx, held, body, queueUrl as string, dlqUrl, failed)) {
          scanner.forget(held.info.messageId);
          moved++;
          if (held.info.sub !== undefined) movedSubs.add(held.info.sub);
          movedBodies.add(held.body);
          outcomes.push({
            message: held.info,
            outcome: cause?.freshBody ? 'refreshed' : 'moved',
            note: cause?.holds ? `forced: ${cause.note}` : causeNote,
          });
        } else {
          outcomes.push({ message: held.info, outcome: 'failed', note: failed.at(-1)?.reason });
        }
      }
      if (ctx.aborted) break;
    }
    // Watching: the worker takes a moment to fail a moved message again. Stops early once every moved user came back.
    if (watchSeconds > 0 && movedSubs.size > 0 && !ctx.aborted) {
      const deadline = ctx.now() + watchSeconds * 1000;
      const back = () => new Set(failedAgain.map((m) => m.sub)).size >= movedSubs.size;
      while (!back() && !ctx.aborted && ctx.now() < deadline) {
        const wait = Math.min(ctx.receiveWaitSeconds, Math.ceil((deadline - ctx.now()) / 1000));
        const fresh = await scanner.receive(10, wait);
        for (const held of fresh) if (held.newer) arrived(held);
        if (fresh.length === 0 && wait === 0) await ctx.sleep(Math.min(500, Math.max(0, deadline - ctx.now())));
      }
    }
  } finally {
    bar.stop();
    notReleased = await scanner.release();
  }
  if (notReleased > 0)
    warn(
      ctx.io,
      `${notReleased} message(s) could not be made visible again; they reappear within ${options.dryRun ? DRY_RUN_HOLD_SECONDS : MOVE_HOLD_SECONDS}s`,
    );
  if (ctx.aborted) warn(ctx.io, 'interrupted: rerun to move the rest');
  if (scanner.ended === 'max') warn(ctx.io, `stopped after --max ${max} message(s); rerun for the rest`);

  const complete =
    failed.length === 0 && failedAgain.length === 0 && !ctx.aborted && !outcomes.some((o) => o.outcome === 'cause still holds');
  const skipped = outcomes.filter(
    (o) =>
      o.outcome === 'cause still holds' ||
      o.outcome === 'sent during this run' ||
      o.outcome === 'duplicate' ||
      o.outcome === 'reference only',
  ).length;
  const data: RedriveResult = {
    mode: 'selective',
    dryRun: options.dryRun === true,
    expected,
    scanned,
    matched,
    moved,
    outcomes,
    skipped,
    failedAgain,
    failed,
  };
  emit(
    ctx.io,
    ctx.json,
    data,
    () => [
      outcomes.length > 0
        ? table(
            outcomes,
            [
              ['sub', (o) => o.message.sub],
              ['username', (o) => o.message.username],
              ['error', (o) => o.message.errorCode],
              ['failed at', (o) => o.message.failedAt],
              ['outcome', (o) => o.outcome],
              ['note', (o) => o.note],
            ],
            120,
          )
        : 'no message matches',
      ...failed.map((f) => `FAILED (${f.stage}) ${f.message.sub ?? f.message.messageId}: ${f.reason}`),
      ...failedAgain.map(
        (m) => `FAILED AGAIN ${m.sub}: back in the DLQ with ${m.errorCode ?? 'no reason'}${m.reason ? `: ${m.reason}` : ''}`,
      ),
      '',
      options.dryRun
        ? `dry run: ${outcomes.filter((o) => o.outcome.startsWith('would')).length} of ${matched.length} matching message(s) would move (${scanned} scanned${expected !== undefined ? ` of ${expected} in the DLQ` : ''}); nothing moved, every message is visible again`
        : `moved ${moved} of ${matched.length} matching message(s) (${scanned} scanned${expected !== undefined ? ` of ${expected} in the DLQ at the start` : ''}); ${skipped} skipped; ${failedAgain.length} failed again${failed.length ? `; ${failed.length} could not be moved` : ''}`,
      ...(moved > 0 && watchSeconds === 0 && failedAgain.length === 0 ? ['(pass --watch 60 to wait for moved users that fail again)'] : []),
    ],
    complete,
  );
  return { exitCode: complete ? EXIT.ok : EXIT.failures, data };
}

/** Send, then delete: never the other way round. True when the message left the DLQ. */
async function moveOne(
  ctx: CliContext,
  held: HeldMessage,
  body: string,
  queueUrl: string,
  dlqUrl: string,
  failed: RedriveFailure[],
): Promise<boolean> {
  try {
    await ctx.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
  } catch (e) {
    failed.push({ message: held.info, stage: 'send', reason: `${(e as Error).name}: ${(e as Error).message}; left in the DLQ` });
    return false;
  }
  try {
    await ctx.sqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: held.receiptHandle }));
    return true;
  } catch (e) {
    failed.push({
      message: held.info,
      stage: 'delete',
      reason: `sent to the import queue but not deleted from the DLQ (${(e as Error).name}); a later redrive sends it again, which the worker ignores once the user is imported`,
    });
    return false;
  }
}

export interface MoveTaskOptions extends GlobalOptions {
  dlqArn?: string;
  dryRun?: boolean;
}

export interface MoveTask {
  taskHandle?: string | undefined;
  status?: string | undefined;
  sourceArn?: string | undefined;
  destinationArn?: string | undefined;
  rate?: number | undefined;
  moved?: number | undefined;
  toMove?: number | undefined;
  startedAt?: string | undefined;
  failureReason?: string | undefined;
}

export async function runRedriveStatus(
  options: MoveTaskOptions,
  deps?: CliDeps,
): Promise<CommandResult<{ sourceArn: string; tasks: MoveTask[] }>> {
  return withContext(options, deps, async (ctx) => {
    const sourceArn = await ctx.setting('DeadLetterQueueArn', options.dlqArn, '--dlq-arn');
    const tasks = await listTasks(ctx, sourceArn);
    const data = { sourceArn, tasks };
    const failedTask = tasks[0]?.status === 'FAILED';
    emit(
      ctx.io,
      ctx.json,
      data,
      () =>
        tasks.length === 0
          ? `no message move task for ${sourceArn}`
          : table(
              tasks,
              [
                ['status', (t) => t.status],
                ['moved', (t) => `${t.moved ?? 0}/${t.toMove ?? '?'}`],
                ['rate', (t) => t.rate],
                ['started', (t) => t.startedAt],
                ['handle', (t) => t.taskHandle],
                ['failure', (t) => t.failureReason],
              ],
              120,
            ),
      !failedTask,
    );
    // The newest task comes first: if it failed, there is something to look at.
    return { exitCode: failedTask ? EXIT.failures : EXIT.ok, data };
  });
}

export async function runRedriveCancel(
  options: MoveTaskOptions,
  deps?: CliDeps,
): Promise<CommandResult<{ cancelled: MoveTask | undefined; dryRun: boolean }>> {
  return withContext(options, deps, async (ctx) => {
    const sourceArn = await ctx.setting('DeadLetterQueueArn', options.dlqArn, '--dlq-arn');
    const running = (await listTasks(ctx, sourceArn)).find((t) => t.status === 'RUNNING' && t.taskHandle);
    if (!running) throw new CliError(`no running message move task for ${sourceArn}; see \`redrive status\``, EXIT.failures);
    if (!options.dryRun) await ctx.sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: running.taskHandle }));
    const data = { cancelled: running, dryRun: options.dryRun === true };
    emit(ctx.io, ctx.json, data, () => [
      options.dryRun ? 'dry run: would cancel this task' : 'cancelled (messages already moved stay moved):',
      keyValues({ ...running }),
    ]);
    return { exitCode: EXIT.ok, data };
  });
}

async function listTasks(ctx: CliContext, sourceArn: string): Promise<MoveTask[]> {
  const out = await ctx.sqs.send(new ListMessageMoveTasksCommand({ SourceArn: sourceArn, MaxResults: 10 }));
  return (out.Results ?? []).map(toMoveTask);
}

function toMoveTask(t: ListMessageMoveTasksResultEntry): MoveTask {
  return {
    taskHandle: t.TaskHandle,
    status: t.Status,
    sourceArn: t.SourceArn,
    destinationArn: t.DestinationArn,
    rate: t.MaxNumberOfMessagesPerSecond,
    moved: t.ApproximateNumberOfMessagesMoved,
    toMove: t.ApproximateNumberOfMessagesToMove,
    startedAt: t.StartedTimestamp ? new Date(t.StartedTimestamp).toISOString() : undefined,
    failureReason: t.FailureReason,
  };
}
