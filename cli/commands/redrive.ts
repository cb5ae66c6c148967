import {
  CancelMessageMoveTaskCommand,
  DeleteMessageCommand,
  ListMessageMoveTasksCommand,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
  type ListMessageMoveTasksResultEntry,
} from '@aws-sdk/client-sqs';
import type { Ledger } from '../../shared/ledger.js';
import { CliError, EXIT, positiveNumber, withContext, type CliContext, type CliDeps, type CommandResult, type GlobalOptions } from '../context.js';
import { addLedgerErrors, DlqScanner, type DlqMessage, type HeldMessage } from '../dlq-messages.js';
import { Pacer } from '../enqueue.js';
import { emit, keyValues, progress, table, warn } from '../output.js';
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
}

export interface RedriveFailure {
  message: DlqMessage;
  stage: 'send' | 'delete';
  reason: string;
}

export interface RedriveResult {
  mode: 'move-task' | 'selective';
  dryRun: boolean;
  taskHandle?: string | undefined;
  sourceArn?: string;
  destinationArn?: string;
  scanned?: number;
  matched?: DlqMessage[];
  moved?: number;
  failed?: RedriveFailure[];
}

export async function runRedrive(options: RedriveOptions, deps?: CliDeps): Promise<CommandResult<RedriveResult>> {
  return withContext(options, deps, async (ctx) => {
    const rate = positiveNumber(options.rate, '--rate', { max: MAX_MOVE_RATE, integer: true });
    const filtered = (options.user?.length ?? 0) > 0 || (options.errorCode?.length ?? 0) > 0;
    if (!filtered && !options.dryRun) {
      if (options.max !== undefined) throw new CliError('--max applies to selective moves (--user, --error-code) and --dry-run; a move task moves every message');
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
    const out = await ctx.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: sourceArn, DestinationArn: destinationArn, MaxNumberOfMessagesPerSecond: rate }));
    taskHandle = out.TaskHandle;
  } catch (e) {
    throw new CliError(
      `StartMessageMoveTask failed: ${(e as Error).name}: ${(e as Error).message}. Only one move task may run per DLQ: see \`redrive status\`, or \`redrive cancel\` it`,
      EXIT.failures,
    );
  }
  const data: RedriveResult = { mode: 'move-task', dryRun: false, taskHandle, sourceArn, destinationArn };
  emit(ctx.io, ctx.json, data, () => [
    `started moving every message of ${sourceArn} to ${destinationArn}${rate ? ` at up to ${rate} messages/second` : ''}`,
    `task handle: ${taskHandle ?? '-'}`,
    'follow it with `redrive status`; stop it with `redrive cancel`',
  ]);
  return { exitCode: EXIT.ok, data };
}

async function selectiveMove(ctx: CliContext, options: RedriveOptions, rate: number | undefined): Promise<CommandResult<RedriveResult>> {
  const dlqUrl = await ctx.setting('DeadLetterQueueUrl', options.dlqUrl, '--dlq-url');
  const queueUrl = options.dryRun ? undefined : await ctx.setting('QueueUrl', options.queueUrl, '--queue-url');
  const users = new Set(options.user ?? []);
  const codes = new Set(options.errorCode ?? []);
  const matches = (m: DlqMessage) =>
    (users.size === 0 || (m.sub !== undefined && users.has(m.sub)) || (m.username !== undefined && users.has(m.username))) &&
    (codes.size === 0 || (m.errorCode !== undefined && codes.has(m.errorCode)));

  const max = positiveNumber(options.max, '--max', { integer: true }) ?? 10_000;
  const scanner = new DlqScanner(ctx.sqs, dlqUrl, { holdSeconds: MOVE_HOLD_SECONDS, waitSeconds: ctx.receiveWaitSeconds, max });
  const pacer = new Pacer(rate, ctx.now, ctx.sleep);
  const bar = progress(ctx.io, options.dryRun ? 'scanning the DLQ' : 'redriving');
  const matched: DlqMessage[] = [];
  const failed: RedriveFailure[] = [];
  let scanned = 0;
  let moved = 0;
  let notReleased = 0;
  let ledger: Promise<Ledger | undefined> | undefined;
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
        if (!matches(held.info)) continue;
        matched.push(held.info);
        if (options.dryRun) continue;
        await pacer.take(1);
        if (await moveOne(ctx, held, queueUrl as string, dlqUrl, failed)) {
          scanner.forget(held.info.messageId);
          moved++;
        }
      }
      if (ctx.aborted) break;
    }
  } finally {
    bar.stop();
    notReleased = await scanner.release();
  }
  if (notReleased > 0) warn(ctx.io, `${notReleased} message(s) could not be made visible again; they reappear within ${MOVE_HOLD_SECONDS}s`);
  if (ctx.aborted) warn(ctx.io, 'interrupted: rerun to move the rest');

  const data: RedriveResult = { mode: 'selective', dryRun: options.dryRun === true, scanned, matched, moved, failed };
  emit(ctx.io, ctx.json, data, () => [
    matched.length > 0
      ? table(matched, [
          ['sub', (m) => m.sub],
          ['username', (m) => m.username],
          ['error', (m) => m.errorCode],
          ['step', (m) => m.step],
          ['failed at', (m) => m.failedAt],
        ])
      : 'no message matches',
    ...failed.map((f) => `FAILED (${f.stage}) ${f.message.sub ?? f.message.messageId}: ${f.reason}`),
    '',
    options.dryRun
      ? `dry run: ${matched.length} of ${scanned} message(s) would move to the import queue`
      : `moved ${moved} of ${matched.length} matching message(s) (${scanned} scanned)${failed.length ? `; ${failed.length} failed` : ''}`,
  ]);
  const complete = failed.length === 0 && !ctx.aborted;
  return { exitCode: complete ? EXIT.ok : EXIT.failures, data };
}

/** Send, then delete: never the other way round. True when the message left the DLQ. */
async function moveOne(ctx: CliContext, held: HeldMessage, queueUrl: string, dlqUrl: string, failed: RedriveFailure[]): Promise<boolean> {
  try {
    await ctx.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: held.body }));
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

export async function runRedriveStatus(options: MoveTaskOptions, deps?: CliDeps): Promise<CommandResult<{ sourceArn: string; tasks: MoveTask[] }>> {
  return withContext(options, deps, async (ctx) => {
    const sourceArn = await ctx.setting('DeadLetterQueueArn', options.dlqArn, '--dlq-arn');
    const tasks = await listTasks(ctx, sourceArn);
    const data = { sourceArn, tasks };
    emit(ctx.io, ctx.json, data, () =>
      tasks.length === 0
        ? `no message move task for ${sourceArn}`
        : table(tasks, [
            ['status', (t) => t.status],
            ['moved', (t) => `${t.moved ?? 0}/${t.toMove ?? '?'}`],
            ['rate', (t) => t.rate],
            ['started', (t) => t.startedAt],
            ['handle', (t) => t.taskHandle],
            ['failure', (t) => t.failureReason],
          ], 120),
    );
    // The newest task comes first: if it failed, there is something to look at.
    return { exitCode: tasks[0]?.status === 'FAILED' ? EXIT.failures : EXIT.ok, data };
  });
}

export async function runRedriveCancel(options: MoveTaskOptions, deps?: CliDeps): Promise<CommandResult<{ cancelled: MoveTask | undefined; dryRun: boolean }>> {
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
