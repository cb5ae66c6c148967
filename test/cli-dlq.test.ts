import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageCommand, type Message, PurgeQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type DlqDeleteResult, type ExportLine, parseDuration, runDlqDelete, runDlqExport, runDlqList } from '../cli/commands/dlq.js';
import { DlqScanner } from '../cli/dlq-messages.js';
import { main } from '../cli/main.js';
import { bufferIo } from '../cli/toolkit/output.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import { sendToDeadLetterQueue } from '../shared/dead-letter.js';
import { type ErrorCode, ImportError } from '../shared/errors.js';
import { buildQueueMessage } from '../shared/message.js';
import { nameOfSub, readableSub } from './support/subs.js';

const POOL = 'us-east-1_DlqPool';
let stack: LocalStack;
let dir: string;

beforeAll(async () => {
  stack = await startLocalStack({ masterToken: 'master-token-dlq-tests', tray: false });
});
afterAll(async () => {
  await stack?.close();
});
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dlq-'));
  await stack.sqs.send(new PurgeQueueCommand({ QueueUrl: stack.dlqUrl }));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function deadLetter(name: string, code: ErrorCode) {
  const sub = readableSub(name);
  const body = JSON.stringify(
    buildQueueMessage({
      userPoolId: POOL,
      username: `user-${sub}`,
      userAttributes: { sub, email: `${sub}@example.com` },
      attributeNames: ['email'],
      source: 'signup',
    }),
  );
  const record = { messageId: `m-${sub}`, body, attributes: { ApproximateReceiveCount: '1' } } as unknown as SQSRecord;
  await sendToDeadLetterQueue(stack.sqs, stack.dlqUrl, record, new ImportError(code, 'plan', `${code} for ${name}`), {
    sub,
    userPoolId: POOL,
  });
}

async function drain(): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const out = await stack.sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.dlqUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }));
    const got = out.Messages ?? [];
    if (got.length === 0) return all;
    all.push(...got);
    for (const m of got) await stack.sqs.send(new DeleteMessageCommand({ QueueUrl: stack.dlqUrl, ReceiptHandle: m.ReceiptHandle }));
  }
}
const subs = (messages: Message[]) => messages.map((m) => nameOfSub((JSON.parse(m.Body ?? '{}') as { sub: string }).sub)).sort();
const readLines = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as ExportLine);
const deps = (extra: { sqs?: SQSClient; now?: () => number } = {}) => {
  const io = bufferIo();
  return { io, deps: { io, sqs: extra.sqs ?? stack.sqs, dynamodb: stack.dynamodb, receiveWaitSeconds: 0, now: extra.now } };
};

describe('DlqScanner', () => {
  it('treats the depth read at the start as approximate: past it, goes on while receives still bring older messages', async () => {
    for (let i = 0; i < 12; i++) await deadLetter(`older-${i}`, 'TRAY_REJECTED');
    // As if SQS's approximate count had lagged behind: it said 1.
    const scanner = new DlqScanner(stack.sqs, stack.dlqUrl, {
      holdSeconds: 30,
      waitSeconds: 0,
      max: 100,
      startedAt: Date.now(),
      expected: 1,
    });
    let seen = 0;
    for await (const batch of scanner.batches()) seen += batch.length;
    await scanner.release();
    expect(seen).toBe(12);
    expect(scanner.ended).toBe('empty');
  });
});

describe('dlq list exit codes', () => {
  it('exits 0 on an empty DLQ and 3 when messages wait (for scripts)', async () => {
    expect((await runDlqList({ dlqUrl: stack.dlqUrl }, deps().deps)).exitCode).toBe(0);
    await deadLetter('waiting', 'TRAY_REJECTED');
    const io = bufferIo();
    expect(
      await main(['dlq', 'list', '--dlq-url', stack.dlqUrl, '--json'], {
        io,
        sqs: stack.sqs,
        dynamodb: stack.dynamodb,
        receiveWaitSeconds: 0,
      }),
    ).toBe(3);
    expect(io.json()).toMatchObject({ ok: true, count: 1 });
  });
});

describe('dlq export', () => {
  it('writes every message (body and attributes) as JSON lines, owner-only, and removes nothing', async () => {
    await deadLetter('e1', 'TRAY_REJECTED');
    await deadLetter('e2', 'MISSING_ATTRIBUTE');
    const out = join(dir, 'dlq.jsonl');
    const { io, deps: d } = deps();
    const result = await runDlqExport({ dlqUrl: stack.dlqUrl, out }, d);
    expect(result.exitCode).toBe(0);
    expect(io.stdout).toContain(`exported 2 message(s) to ${out}`);
    const lines = readLines(out);
    expect(lines.map((l) => nameOfSub(l.sub)).sort()).toEqual(['e1', 'e2']);
    const e2 = lines.find((l) => l.sub === readableSub('e2'));
    expect(e2?.attributes).toMatchObject({
      ErrorCode: 'MISSING_ATTRIBUTE',
      UserSub: readableSub('e2'),
      ErrorReason: 'MISSING_ATTRIBUTE for e2',
    });
    expect(JSON.parse(e2?.body ?? '')).toMatchObject({ sub: readableSub('e2'), userPoolId: POOL });
    expect(e2?.sentAt).toMatch(/^\d{4}-/);
    expect(statSync(out).mode & 0o077).toBe(0);
    expect(subs(await drain())).toEqual(['e1', 'e2']); // still there, visible at once

    // Never overwrites: a second export to the same file is a usage error.
    await expect(runDlqExport({ dlqUrl: stack.dlqUrl, out }, deps().deps)).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('exists already'),
    });
  });
});

describe('dlq delete', () => {
  it('--user: exports the matching messages first, then deletes exactly them', async () => {
    for (const sub of ['d1', 'd2', 'd3']) await deadLetter(sub, 'TRAY_REJECTED');
    const file = join(dir, 'deleted.jsonl');
    const { io, deps: d } = deps();
    const result = await runDlqDelete({ dlqUrl: stack.dlqUrl, user: [readableSub('d2')], export: file, json: true }, d);
    expect(result.exitCode).toBe(0);
    expect(io.json<DlqDeleteResult>()).toMatchObject({ deleted: 1, exportFile: file, failed: [] });
    expect(readLines(file).map((l) => nameOfSub(l.sub))).toEqual(['d2']);
    expect(subs(await drain())).toEqual(['d1', 'd3']);
  });

  it('names the export file it writes when --export is not given', async () => {
    await deadLetter('auto', 'MISSING_ATTRIBUTE');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const { io, deps: d } = deps();
      const result = await runDlqDelete({ dlqUrl: stack.dlqUrl, code: ['MISSING_ATTRIBUTE'] }, d);
      expect(result.data.exportFile).toMatch(/dlq-deleted-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.jsonl$/);
      expect(existsSync(result.data.exportFile as string)).toBe(true);
      expect(io.stderr + io.stdout).toContain(result.data.exportFile);
    } finally {
      process.chdir(cwd);
    }
    expect(await drain()).toEqual([]);
  });

  it('--code and --older-than combine; --dry-run deletes nothing and writes no file', async () => {
    await deadLetter('old-a', 'MISSING_ATTRIBUTE');
    await deadLetter('old-b', 'TRAY_REJECTED');
    const twoHoursLater = () => Date.now() + 2 * 3_600_000;
    const dry = await runDlqDelete(
      { dlqUrl: stack.dlqUrl, code: ['MISSING_ATTRIBUTE'], olderThan: '1h', dryRun: true, export: join(dir, 'never.jsonl') },
      deps({ now: twoHoursLater }).deps,
    );
    expect(dry.data.matched.map((m) => nameOfSub(m.sub))).toEqual(['old-a']);
    expect(existsSync(join(dir, 'never.jsonl'))).toBe(false);
    expect(subs(await drain())).toEqual(['old-a', 'old-b']);

    await deadLetter('old-a', 'MISSING_ATTRIBUTE');
    await deadLetter('old-b', 'TRAY_REJECTED');
    const tooYoung = await runDlqDelete(
      { dlqUrl: stack.dlqUrl, olderThan: '3h', export: join(dir, 'young.jsonl') },
      deps({ now: twoHoursLater }).deps,
    );
    expect(tooYoung.data.deleted).toBe(0);
    const all = await runDlqDelete(
      { dlqUrl: stack.dlqUrl, olderThan: '1h', export: join(dir, 'all.jsonl') },
      deps({ now: twoHoursLater }).deps,
    );
    expect(all.data.deleted).toBe(2);
    expect(await drain()).toEqual([]);
  });

  it('deletes nothing when the export cannot be written', async () => {
    await deadLetter('safe', 'TRAY_REJECTED');
    const file = join(dir, 'taken.jsonl');
    writeFileSync(file, "someone else's file\n");
    await expect(runDlqDelete({ dlqUrl: stack.dlqUrl, user: [readableSub('safe')], export: file }, deps().deps)).rejects.toMatchObject({
      exitCode: 2,
    });
    expect(readFileSync(file, 'utf8')).toBe("someone else's file\n");
    expect(subs(await drain())).toEqual(['safe']);
  });

  it('refuses to run without a filter, with an empty one, or with a bad duration (exit 2)', async () => {
    for (const argv of [
      ['dlq', 'delete'],
      ['dlq', 'delete', '--user', ''],
      ['dlq', 'delete', '--older-than', 'soon'],
    ]) {
      const io = bufferIo();
      expect(await main([...argv, '--dlq-url', stack.dlqUrl], { io, sqs: stack.sqs })).toBe(2);
      expect(io.stderr).toMatch(/needs a filter|is empty|not a duration/);
    }
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration('90s')).toBe(90_000);
  });
});
