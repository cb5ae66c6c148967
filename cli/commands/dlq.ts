import { closeSync, openSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { DeleteMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { DeadLetter } from '../../shared/dead-letter.js';
import { Ledger } from '../../shared/ledger.js';
import { scrub } from '../../shared/redact.js';
import { type CliContext, type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { addLedgerErrors, DlqScanner, type HeldMessage, queueDepth } from '../dlq-messages.js';
import { CliError, EXIT } from '../toolkit/errors.js';
import { positiveNumber } from '../toolkit/flags.js';
import { emit, note, table, warn } from '../toolkit/output.js';
import { progress } from '../toolkit/progress.js';

/** Lists dead-lettered messages without removing them. */
export interface DlqListOptions extends GlobalOptions {
  dlqUrl?: string;
  table?: string;
  max?: number;
}

export interface DlqListResult {
  dlqUrl: string;
  count: number;
  messages: DeadLetter[];
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
    const messages: DeadLetter[] = [];
    let notReleased = 0;
    try {
      for await (const batch of scanner.batches()) messages.push(...batch.map((m) => m.info));
    } finally {
      notReleased = await scanner.release();
    }
    await addLedgerErrors(messages, await ledgerIfKnown(ctx, options.table, messages));
    if (notReleased > 0)
      warn(ctx.io, `${notReleased} message(s) could not be made visible again; they reappear within ${LIST_HOLD_SECONDS}s`);
    if (messages.length >= max) warn(ctx.io, `listed the first ${max} messages; pass --max to see more`);

    const data: DlqListResult = { dlqUrl, count: messages.length, messages, notReleased };
    emit(
      ctx.io,
      ctx.json,
      data,
      () =>
        messages.length === 0
          ? 'the dead-letter queue is empty'
          : [
              table(
                messages,
                [
                  ['sub', (m) => m.sub],
                  ['username', (m) => m.username],
                  ['error', (m) => m.errorCode],
                  ['step', (m) => m.step],
                  ['failed at', (m) => m.failedAt],
                  ['receives', (m) => m.receiveCount],
                  [
                    'reason',
                    (m) =>
                      m.bodyProblem ?? m.reason ?? (m.origin === 'sqs-redrive' ? '(moved by SQS redrive; no reason recorded)' : undefined),
                  ],
                ],
                100,
              ),
              '',
              `${messages.length} message(s) in the dead-letter queue`,
            ],
      // Listing worked: exit 3 only tells scripts that messages wait.
      true,
    );
    // Scripts: `dlq list || alert` (3 = messages waiting; 0 = empty).
    return { exitCode: messages.length > 0 ? EXIT.dlqNotEmpty : EXIT.ok, data };
  });
}

/** The ledger, when messages need it and its table is known (flag or stack); otherwise none, with a note. */
export async function ledgerIfKnown(ctx: CliContext, tableFlag: string | undefined, messages: DeadLetter[]): Promise<Ledger | undefined> {
  if (!messages.some((m) => m.origin === 'sqs-redrive')) return undefined;
  const tableName = await ctx.optionalSetting('LedgerTableName', tableFlag);
  if (!tableName) {
    warn(ctx.io, 'some messages carry no failure reason and the ledger table is unknown; pass --table to show their lastError');
    return undefined;
  }
  return new Ledger({ tableName, client: ctx.dynamodb });
}

/**
 * One line of an export: everything needed to look at a message later or to send it again by
 * hand. Queue messages never carry credentials (the plan keeps them in Secrets Manager; the
 * trigger sends only the attributes the plan names), and registered secrets are scrubbed anyway.
 */
export interface ExportLine {
  messageId: string;
  sentAt?: string | undefined;
  receiveCount?: number | undefined;
  sub?: string | undefined;
  errorCode?: string | undefined;
  /** The message attributes (ErrorCode, ErrorReason, …). */
  attributes: Record<string, string>;
  body: string;
}

export function exportLine(held: HeldMessage): ExportLine {
  return {
    messageId: held.info.messageId,
    sentAt: held.info.sentAt,
    receiveCount: held.info.receiveCount,
    sub: held.info.sub,
    errorCode: held.info.errorCode,
    attributes: held.attributes,
    body: held.body,
  };
}

/** Writes JSON lines to a new file (never over an existing one), readable by the owner only. */
export function writeExport(path: string, lines: readonly ExportLine[]): string {
  const full = resolve(path);
  let fd: number;
  try {
    fd = openSync(full, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'EEXIST'
        ? `export file ${full} exists already; pass another --out/--export FILE (exports are never overwritten)`
        : `cannot create export file ${full} (${code ?? (e as Error).message}); pass a writable path`,
    );
  }
  try {
    for (const line of lines) writeSync(fd, `${scrub(JSON.stringify(line))}\n`);
  } finally {
    closeSync(fd);
  }
  return full;
}

/** `dlq-export-2026-12-02T03-40-00Z.jsonl` in the current directory. */
export function defaultExportPath(now: number, prefix = 'dlq-export'): string {
  return `${prefix}-${new Date(now)
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-')}.jsonl`;
}

/** Seconds a message stays hidden while export/delete scan the queue (released at the end). */
export const HOUSEKEEPING_HOLD_SECONDS = 300;

export interface DlqExportOptions extends GlobalOptions {
  dlqUrl?: string;
  out?: string;
  max?: number;
}

export interface DlqExportResult {
  dlqUrl: string;
  file: string;
  exported: number;
}

/** Writes the DLQ to a JSON-lines file, removing nothing. */
export async function runDlqExport(options: DlqExportOptions, deps?: CliDeps): Promise<CommandResult<DlqExportResult>> {
  if (options.out !== undefined && options.out.trim() === '') throw new CliError('--out is empty; give a file name, e.g. --out dlq.jsonl');
  return withContext(options, deps, async (ctx) => {
    const dlqUrl = await ctx.setting('DeadLetterQueueUrl', options.dlqUrl, '--dlq-url');
    const max = positiveNumber(options.max, '--max', { integer: true }) ?? 100_000;
    const path = options.out ?? defaultExportPath(ctx.now());
    const { held, scanner } = await scanAll(ctx, dlqUrl, max);
    let file: string;
    try {
      file = writeExport(path, held.map(exportLine));
    } finally {
      await releaseAll(ctx, scanner);
    }
    if (scanner.ended === 'max') warn(ctx.io, `exported the first ${max} messages; pass --max to export more`);
    const data: DlqExportResult = { dlqUrl, file, exported: held.length };
    emit(ctx.io, ctx.json, data, () => `exported ${held.length} message(s) to ${file} (nothing was removed)`);
    return { exitCode: EXIT.ok, data };
  });
}

export interface DlqDeleteOptions extends GlobalOptions {
  dlqUrl?: string;
  table?: string;
  user?: string[];
  code?: string[];
  olderThan?: string;
  export?: string;
  max?: number;
  dryRun?: boolean;
}

export interface DlqDeleteResult {
  dlqUrl: string;
  dryRun: boolean;
  /** The DLQ's depth when the run started: the scan ends after seeing that many older messages. */
  expected?: number | undefined;
  scanned: number;
  matched: DeadLetter[];
  deleted: number;
  exportFile?: string | undefined;
  failed: { messageId: string; sub?: string | undefined; reason: string }[];
}

/** `90s`, `30m`, `12h`, `7d`, `2w` → milliseconds. */
export function parseDuration(value: string, flag = '--older-than'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$/i.exec(value);
  const units: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  if (!match?.[1] || !match[2])
    throw new CliError(`${flag} ${JSON.stringify(value)} is not a duration; write a number and a unit: 90s, 30m, 12h, 7d or 2w`);
  const ms = Number(match[1]) * (units[match[2].toLowerCase()] as number);
  if (!(ms > 0)) throw new CliError(`${flag} must be longer than 0, e.g. 7d`);
  return ms;
}

/**
 * Deletes stale messages by user, error code and/or age. Everything it is about to delete is
 * exported first (to --export FILE or a file it names); a message is deleted only once the export
 * is written. Messages sent after the run started are never deleted.
 */
export async function runDlqDelete(options: DlqDeleteOptions, deps?: CliDeps): Promise<CommandResult<DlqDeleteResult>> {
  for (const [flag, values] of [
    ['--user', options.user],
    ['--code', options.code],
  ] as const) {
    if (values !== undefined && values.filter((v) => v.trim() !== '').length === 0)
      throw new CliError(`${flag} is empty; give a value, or leave ${flag} out`);
  }
  const users = new Set((options.user ?? []).filter((v) => v.trim() !== ''));
  const codes = new Set((options.code ?? []).filter((v) => v.trim() !== ''));
  const olderThanMs = options.olderThan !== undefined ? parseDuration(options.olderThan) : undefined;
  if (users.size === 0 && codes.size === 0 && olderThanMs === undefined) {
    throw new CliError(
      'dlq delete needs a filter: --user SUB, --code ERROR_CODE and/or --older-than DURATION (e.g. 14d); to empty the whole DLQ use `--older-than 1s`',
    );
  }
  if (options.export !== undefined && options.export.trim() === '')
    throw new CliError('--export is empty; give a file name, or leave it out for an automatic one');
  return withContext(options, deps, async (ctx) => {
    const dlqUrl = await ctx.setting('DeadLetterQueueUrl', options.dlqUrl, '--dlq-url');
    const max = positiveNumber(options.max, '--max', { integer: true }) ?? 100_000;
    const startedAt = ctx.now();
    const matches = (m: DeadLetter, sentAt: number | undefined) =>
      (users.size === 0 || (m.sub !== undefined && users.has(m.sub)) || (m.username !== undefined && users.has(m.username))) &&
      (codes.size === 0 || (m.errorCode !== undefined && codes.has(m.errorCode))) &&
      (olderThanMs === undefined || (sentAt !== undefined && sentAt <= startedAt - olderThanMs));

    const { held, scanner, expected } = await scanAll(ctx, dlqUrl, max, startedAt, options.dryRun === true);
    const data: DlqDeleteResult = {
      dlqUrl,
      dryRun: options.dryRun === true,
      expected,
      scanned: held.length,
      matched: [],
      deleted: 0,
      failed: [],
    };
    try {
      const infos = held.map((h) => h.info);
      if (codes.size > 0 && infos.some((m) => m.origin === 'sqs-redrive'))
        await addLedgerErrors(infos, await ledgerIfKnown(ctx, options.table, infos));
      const doomed = held.filter((h) => !h.newer && matches(h.info, h.sentAt));
      data.matched = doomed.map((h) => h.info);
      if (!options.dryRun && doomed.length > 0) {
        // Export first: nothing is deleted unless the file holding it was written.
        data.exportFile = writeExport(options.export ?? defaultExportPath(ctx.now(), 'dlq-deleted'), doomed.map(exportLine));
        note(ctx.io, `exported the ${doomed.length} message(s) to delete to ${data.exportFile}`);
        for (let i = 0; i < doomed.length; i += 10) {
          const chunk = doomed.slice(i, i + 10);
          try {
            const out = await ctx.sqs.send(
              new DeleteMessageBatchCommand({
                QueueUrl: dlqUrl,
                Entries: chunk.map((h, j) => ({ Id: String(j), ReceiptHandle: h.receiptHandle })),
              }),
            );
            const failedIds = new Map((out.Failed ?? []).map((f) => [f.Id, `${f.Code ?? 'Error'}${f.Message ? `: ${f.Message}` : ''}`]));
            chunk.forEach((h, j) => {
              const reason = failedIds.get(String(j));
              if (reason) data.failed.push({ messageId: h.info.messageId, sub: h.info.sub, reason });
              else {
                data.deleted++;
                scanner.forget(h.info.messageId);
              }
            });
          } catch (e) {
            for (const h of chunk)
              data.failed.push({ messageId: h.info.messageId, sub: h.info.sub, reason: `${(e as Error).name}: ${(e as Error).message}` });
          }
        }
      }
    } finally {
      await releaseAll(ctx, scanner);
    }
    emit(
      ctx.io,
      ctx.json,
      data,
      () => [
        data.matched.length > 0
          ? table(data.matched, [
              ['sub', (m) => m.sub],
              ['username', (m) => m.username],
              ['error', (m) => m.errorCode],
              ['in the DLQ since', (m) => m.sentAt],
            ])
          : 'no message matches',
        ...data.failed.map((f) => `FAILED ${f.sub ?? f.messageId}: ${f.reason}`),
        '',
        data.dryRun
          ? `dry run: ${data.matched.length} of ${data.scanned} message(s) would be exported and deleted; nothing changed`
          : `deleted ${data.deleted} of ${data.matched.length} matching message(s) (${data.scanned} scanned)${data.exportFile ? `; exported first to ${data.exportFile}` : ''}`,
      ],
      data.failed.length === 0,
    );
    return { exitCode: data.failed.length > 0 ? EXIT.failures : EXIT.ok, data };
  });
}

/** Every message the DLQ held at the start (held hidden until released), at most `max`. */
async function scanAll(
  ctx: CliContext,
  dlqUrl: string,
  max: number,
  startedAt = ctx.now(),
  short = false,
): Promise<{ held: HeldMessage[]; scanner: DlqScanner; expected: number | undefined }> {
  const expected = await queueDepth(ctx.sqs, dlqUrl);
  const scanner = new DlqScanner(ctx.sqs, dlqUrl, {
    holdSeconds: short ? LIST_HOLD_SECONDS : HOUSEKEEPING_HOLD_SECONDS,
    waitSeconds: ctx.receiveWaitSeconds,
    max,
    startedAt,
    expected,
  });
  const held: HeldMessage[] = [];
  const bar = progress(ctx.io, 'reading the DLQ', expected);
  try {
    for await (const batch of scanner.batches()) {
      held.push(...batch);
      bar.increment(batch.length);
      if (ctx.aborted) break;
    }
  } catch (e) {
    await releaseAll(ctx, scanner);
    throw e;
  } finally {
    bar.stop();
  }
  return { held, scanner, expected };
}

async function releaseAll(ctx: CliContext, scanner: DlqScanner): Promise<void> {
  const notReleased = await scanner.release();
  if (notReleased > 0)
    warn(ctx.io, `${notReleased} message(s) could not be made visible again; they reappear within ${HOUSEKEEPING_HOLD_SECONDS}s`);
}
