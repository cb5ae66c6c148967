import { Ledger } from '../../shared/ledger.js';
import { EXIT, positiveNumber, withContext, type CliContext, type CliDeps, type CommandResult, type GlobalOptions } from '../context.js';
import { addLedgerErrors, DlqScanner, type DlqMessage } from '../dlq-messages.js';
import { emit, table, warn } from '../output.js';

/** Lists dead-lettered messages without removing them. */
export interface DlqListOptions extends GlobalOptions {
  dlqUrl?: string;
  table?: string;
  max?: number;
}

export interface DlqListResult {
  dlqUrl: string;
  count: number;
  messages: DlqMessage[];
  /** Messages that could not be made visible again (they reappear when their short hold ends). */
  notReleased: number;
}

/** Seconds a listed message stays hidden: long enough to list a few hundred, short if the CLI dies. */
export const LIST_HOLD_SECONDS = 30;

export async function runDlqList(options: DlqListOptions, deps?: CliDeps): Promise<CommandResult<DlqListResult>> {
  return withContext(options, deps, async (ctx) => {
    const dlqUrl = await ctx.setting('DeadLetterQueueUrl', options.dlqUrl, '--dlq-url');
    const max = positiveNumber(options.max, '--max', { integer: true }) ?? 100;
    const scanner = new DlqScanner(ctx.sqs, dlqUrl, { holdSeconds: LIST_HOLD_SECONDS, waitSeconds: ctx.receiveWaitSeconds, max });
    const messages: DlqMessage[] = [];
    let notReleased = 0;
    try {
      for await (const batch of scanner.batches()) messages.push(...batch.map((m) => m.info));
    } finally {
      notReleased = await scanner.release();
    }
    await addLedgerErrors(messages, await ledgerIfKnown(ctx, options.table, messages));
    if (notReleased > 0) warn(ctx.io, `${notReleased} message(s) could not be made visible again; they reappear within ${LIST_HOLD_SECONDS}s`);
    if (messages.length >= max) warn(ctx.io, `listed the first ${max} messages; pass --max to see more`);

    const data: DlqListResult = { dlqUrl, count: messages.length, messages, notReleased };
    emit(ctx.io, ctx.json, data, () =>
      messages.length === 0
        ? 'the dead-letter queue is empty'
        : [
            table(messages, [
              ['sub', (m) => m.sub],
              ['username', (m) => m.username],
              ['error', (m) => m.errorCode],
              ['step', (m) => m.step],
              ['failed at', (m) => m.failedAt],
              ['receives', (m) => m.receiveCount],
              ['reason', (m) => m.bodyProblem ?? m.reason ?? (m.origin === 'sqs-redrive' ? '(moved by SQS redrive; no reason recorded)' : undefined)],
            ], 100),
            '',
            `${messages.length} message(s) in the dead-letter queue`,
          ],
    );
    return { exitCode: EXIT.ok, data };
  });
}

/** The ledger, when messages need it and its table is known (flag or stack); otherwise none, with a note. */
export async function ledgerIfKnown(ctx: CliContext, tableFlag: string | undefined, messages: DlqMessage[]): Promise<Ledger | undefined> {
  if (!messages.some((m) => m.origin === 'sqs-redrive')) return undefined;
  const tableName = await ctx.optionalSetting('LedgerTableName', tableFlag);
  if (!tableName) {
    warn(ctx.io, 'some messages carry no failure reason and the ledger table is unknown; pass --table to show their lastError');
    return undefined;
  }
  return new Ledger({ tableName, client: ctx.dynamodb });
}
