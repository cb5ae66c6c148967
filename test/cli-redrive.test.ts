import { AdminUpdateUserAttributesCommand } from '@aws-sdk/client-cognito-identity-provider';
import {
  CancelMessageMoveTaskCommand,
  DeleteMessageCommand,
  ListMessageMoveTasksCommand,
  type Message,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type DlqListResult, runDlqList } from '../cli/commands/dlq.js';
import { type RedriveResult, runRedrive, runRedriveCancel, runRedriveStatus } from '../cli/commands/redrive.js';
import { main } from '../cli/main.js';
import { bufferIo } from '../cli/toolkit/output.js';
import { type LocalStack, startLocalStack } from '../local/local-stack.js';
import { sendToDeadLetterQueue } from '../shared/dead-letter.js';
import { type ErrorCode, ImportError } from '../shared/errors.js';
import { Ledger } from '../shared/ledger.js';
import { buildQueueMessage, DLQ_ATTRIBUTES } from '../shared/message.js';
import { type CognitoLocal, startCognitoLocal } from './support/cognito-local.js';
import { readableSub } from './support/subs.js';

const POOL = 'us-east-1_RedrivePool';
const QUEUE_ARN = 'arn:aws:sqs:us-east-1:000000000000:tray-auth-import-queue';

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({ masterToken: 'master-token-redrive-tests', tray: false });
});
afterAll(async () => {
  await stack?.close();
});
beforeEach(async () => {
  await stack.sqs.send(new PurgeQueueCommand({ QueueUrl: stack.queueUrl }));
  await stack.sqs.send(new PurgeQueueCommand({ QueueUrl: stack.dlqUrl }));
});

const S = readableSub;

const body = (sub: string) =>
  JSON.stringify(
    buildQueueMessage({
      userPoolId: POOL,
      username: `user-${sub}`,
      userAttributes: { sub, email: `${sub}@example.com` },
      attributeNames: ['email'],
      source: 'signup',
    }),
  );

/** Dead-letters a user as the worker does: the body unchanged, the reason in attributes. */
async function deadLetter(sub: string, code: ErrorCode, step: 'createSolutionInstance' | 'authorize' = 'createSolutionInstance') {
  const record = { messageId: `m-${sub}`, body: body(sub), attributes: { ApproximateReceiveCount: '5' } } as unknown as SQSRecord;
  await sendToDeadLetterQueue(stack.sqs, stack.dlqUrl, record, new ImportError(code, step, `${code} for ${sub}`), {
    sub,
    userPoolId: POOL,
  });
}

/** Receives and deletes everything visible: what a queue holds. */
async function drain(url: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const out = await stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 60, MessageAttributeNames: ['All'] }),
    );
    const got = out.Messages ?? [];
    if (got.length === 0) return all;
    all.push(...got);
    for (const m of got) await stack.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
  }
}

const subsOf = (messages: Message[]) => messages.map((m) => (JSON.parse(m.Body ?? '{}') as { sub: string }).sub).sort();

const deps = (extra: { sqs?: SQSClient } = {}) => {
  const io = bufferIo();
  return { io, deps: { io, sqs: extra.sqs ?? stack.sqs, dynamodb: stack.dynamodb, receiveWaitSeconds: 0 } };
};

describe('dlq list', () => {
  it('lists the dead-lettered users with their reasons, leaves them in the queue, and explains attribute-less ones from the ledger', async () => {
    await deadLetter(S('sub-a'), 'TRAY_REJECTED');
    await deadLetter(S('sub-b'), 'MISSING_ATTRIBUTE', 'authorize');
    // Moved by SQS's own redrive (a crash): no attributes; the ledger holds the last error.
    await stack.sqs.send(new SendMessageCommand({ QueueUrl: stack.dlqUrl, MessageBody: body(S('sub-c')) }));
    const ledger = new Ledger({ tableName: stack.tableName, client: stack.dynamodb });
    await ledger.acquire({ userPoolId: POOL, sub: S('sub-c') }, 'o', 60_000, { username: `user-${S('sub-c')}`, source: 'signup' });
    await ledger.recordFailure(
      { userPoolId: POOL, sub: S('sub-c') },
      'o',
      { code: 'TRAY_TIMEOUT', step: 'createExternalUser', message: 'Tray did not answer' },
      false,
    );

    const { io, deps: d } = deps();
    const result = await runDlqList({ dlqUrl: stack.dlqUrl, table: stack.tableName, json: true }, d);
    expect(result.exitCode).toBe(3); // not empty: scripts can tell
    const listed = io.json<DlqListResult>();
    expect(listed.count).toBe(3);
    const bySub = Object.fromEntries(listed.messages.map((m) => [m.sub, m]));
    expect(bySub[S('sub-a')]).toMatchObject({
      origin: 'worker',
      errorCode: 'TRAY_REJECTED',
      step: 'createSolutionInstance',
      username: `user-${S('sub-a')}`,
      receiveCount: 5,
    });
    expect(bySub[S('sub-a')]?.failedAt).toMatch(/^\d{4}-/);
    expect(bySub[S('sub-b')]).toMatchObject({ errorCode: 'MISSING_ATTRIBUTE', step: 'authorize' });
    expect(bySub[S('sub-c')]).toMatchObject({ origin: 'sqs-redrive', errorCode: 'TRAY_TIMEOUT', step: 'createExternalUser' });

    // Nothing was removed, and everything is visible again at once.
    expect(subsOf(await drain(stack.dlqUrl))).toEqual([S('sub-a'), S('sub-b'), S('sub-c')]);
  });

  it('prints a table without --json', async () => {
    await deadLetter(S('sub-t'), 'TRAY_REJECTED');
    const { io, deps: d } = deps();
    await runDlqList({ dlqUrl: stack.dlqUrl, table: stack.tableName }, d);
    expect(io.stdout).toMatch(/sub\s+username\s+error/);
    expect(io.stdout).toContain('TRAY_REJECTED');
    expect(io.stdout).toContain('1 message(s)');
  });
});

describe('redrive, selective', () => {
  it('moves exactly the matching messages (body unchanged, without the error attributes) and leaves the rest', async () => {
    await deadLetter(S('sub-1'), 'TRAY_REJECTED');
    await deadLetter(S('sub-2'), 'TRAY_UNAVAILABLE');
    await deadLetter(S('sub-3'), 'TRAY_REJECTED');
    await deadLetter(S('sub-4'), 'MISSING_ATTRIBUTE');

    const { io, deps: d } = deps();
    const result = await runRedrive({ dlqUrl: stack.dlqUrl, queueUrl: stack.queueUrl, errorCode: ['TRAY_REJECTED'], json: true }, d);
    expect(result.exitCode).toBe(0);
    const out = io.json<RedriveResult>();
    expect(out).toMatchObject({ mode: 'selective', moved: 2, scanned: 4, failed: [] });

    const moved = await drain(stack.queueUrl);
    expect(subsOf(moved)).toEqual([S('sub-1'), S('sub-3')]);
    for (const m of moved) {
      expect(m.MessageAttributes?.[DLQ_ATTRIBUTES.errorCode]).toBeUndefined();
      expect(JSON.parse(m.Body ?? '')).toMatchObject({ v: 1, userPoolId: POOL, source: 'signup' });
    }
    expect(subsOf(await drain(stack.dlqUrl))).toEqual([S('sub-2'), S('sub-4')]);
  });

  it('keeps the body byte for byte', async () => {
    await deadLetter(S('sub-exact'), 'TRAY_REJECTED');
    const [original] = await drain(stack.dlqUrl);
    await stack.sqs.send(
      new SendMessageCommand({ QueueUrl: stack.dlqUrl, MessageBody: original?.Body, MessageAttributes: original?.MessageAttributes }),
    );
    const { deps: d } = deps();
    await runRedrive({ dlqUrl: stack.dlqUrl, queueUrl: stack.queueUrl, user: [S('sub-exact')] }, d);
    const [moved] = await drain(stack.queueUrl);
    expect(moved?.Body).toBe(original?.Body);
  });

  it('filters by user', async () => {
    for (const sub of [S('u1'), S('u2'), S('u3')]) await deadLetter(sub, 'TRAY_REJECTED');
    const { deps: d } = deps();
    const result = await runRedrive({ dlqUrl: stack.dlqUrl, queueUrl: stack.queueUrl, user: [S('u2')] }, d);
    expect(result.data.moved).toBe(1);
    expect(subsOf(await drain(stack.queueUrl))).toEqual([S('u2')]);
    expect(subsOf(await drain(stack.dlqUrl))).toEqual([S('u1'), S('u3')]);
  });

  it('--dry-run lists what would move and moves nothing', async () => {
    await deadLetter(S('d1'), 'TRAY_REJECTED');
    await deadLetter(S('d2'), 'TRAY_UNAVAILABLE');
    const { io, deps: d } = deps();
    const result = await runRedrive({ dlqUrl: stack.dlqUrl, errorCode: ['TRAY_UNAVAILABLE'], dryRun: true }, d);
    expect(result.exitCode).toBe(0);
    expect(result.data.matched?.map((m) => m.sub)).toEqual([S('d2')]);
    expect(io.stdout).toContain('dry run: 1 of 1 matching message(s) would move (2 scanned');
    expect(await drain(stack.queueUrl)).toEqual([]);
    expect(subsOf(await drain(stack.dlqUrl))).toEqual([S('d1'), S('d2')]);
  });

  it('deletes nothing when the send fails', async () => {
    await deadLetter(S('f1'), 'TRAY_REJECTED');
    await deadLetter(S('f2'), 'TRAY_REJECTED');
    const calls: string[] = [];
    const failing = new SQSClient({});
    failing.middlewareStack.add(
      (next, context) => async (args) => {
        calls.push(context.commandName as string);
        if (context.commandName === 'SendMessageCommand')
          throw Object.assign(new Error('queue unavailable'), { name: 'ServiceUnavailable' });
        return next(args);
      },
      { step: 'initialize', name: 'failSends' },
    );
    const { io, deps: d } = deps({ sqs: failing });
    const result = await runRedrive({ dlqUrl: stack.dlqUrl, queueUrl: stack.queueUrl, errorCode: ['TRAY_REJECTED'], json: true }, d);
    failing.destroy();

    expect(result.exitCode).toBe(1);
    expect(io.json<RedriveResult>()).toMatchObject({ moved: 0 });
    expect(result.data.failed?.map((f) => f.stage)).toEqual(['send', 'send']);
    expect(calls).not.toContain('DeleteMessageCommand');
    expect(await drain(stack.queueUrl)).toEqual([]);
    // Both still there, and visible at once.
    expect(subsOf(await drain(stack.dlqUrl))).toEqual([S('f1'), S('f2')]);
  });

  it('matches --error-code on attribute-less messages through the ledger', async () => {
    await stack.sqs.send(new SendMessageCommand({ QueueUrl: stack.dlqUrl, MessageBody: body(S('crashed')) }));
    const ledger = new Ledger({ tableName: stack.tableName, client: stack.dynamodb });
    await ledger.acquire({ userPoolId: POOL, sub: S('crashed') }, 'o', 60_000, { username: `user-${S('crashed')}`, source: 'signup' });
    await ledger.recordFailure(
      { userPoolId: POOL, sub: S('crashed') },
      'o',
      { code: 'INTERNAL', step: 'authorize', message: 'boom' },
      false,
    );
    const { deps: d } = deps();
    const result = await runRedrive({ dlqUrl: stack.dlqUrl, queueUrl: stack.queueUrl, table: stack.tableName, errorCode: ['INTERNAL'] }, d);
    expect(result.data.moved).toBe(1);
    expect(subsOf(await drain(stack.queueUrl))).toEqual([S('crashed')]);
  });
});

/**
 * An SQS client that plays the worker failing a user again: every message sent to the import
 * queue for a sub in `failing` is dead-lettered again at once (a new DLQ message with the same
 * body), as the worker does when the cause still holds.
 */
function failingWorker(failing: Set<string>): { sqs: SQSClient; sentToQueue: () => string[] } {
  const sqs = new SQSClient({});
  const sent: string[] = [];
  sqs.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const input = args.input as { QueueUrl?: string; MessageBody?: string };
      if (context.commandName === 'SendMessageCommand' && input.QueueUrl === stack.queueUrl) {
        const sub = (JSON.parse(input.MessageBody ?? '{}') as { sub: string }).sub;
        sent.push(sub);
        if (failing.has(sub)) await deadLetter(sub, 'TRAY_REJECTED');
      }
      return result;
    },
    { step: 'initialize', name: 'failingWorker' },
  );
  return { sqs, sentToQueue: () => sent };
}

describe('redrive terminates', () => {
  it('moves a message that fails again exactly once, reports it as failed again and exits 1', async () => {
    await deadLetter(S('loop'), 'TRAY_REJECTED');
    for (const name of ['ok-1', 'ok-2']) await deadLetter(S(name), 'TRAY_REJECTED');
    const worker = failingWorker(new Set([S('loop')]));
    const { io, deps: d } = deps({ sqs: worker.sqs });
    const started = Date.now();
    const result = await runRedrive(
      { dlqUrl: stack.dlqUrl, queueUrl: stack.queueUrl, errorCode: ['TRAY_REJECTED'], watch: 1, json: true },
      d,
    );
    worker.sqs.destroy();

    expect(Date.now() - started).toBeLessThan(5_000); // it ends: the scan at the count it started with, the watch after 1 s
    expect(result.exitCode).toBe(1);
    expect(worker.sentToQueue().sort()).toEqual([S('loop'), S('ok-1'), S('ok-2')]); // each once, the returned copy never
    const out = io.json<RedriveResult>();
    expect(out).toMatchObject({ moved: 3, expected: 3 });
    expect(out.failedAgain?.map((m) => m.sub)).toEqual([S('loop')]);
    // The returned message stays in the DLQ, visible, for the operator to look at.
    expect(subsOf(await drain(stack.dlqUrl))).toEqual([S('loop')]);
    expect(subsOf(await drain(stack.queueUrl))).toEqual([S('loop'), S('ok-1'), S('ok-2')]);
  });

  it('never moves messages that entered the DLQ after the run started, and stops at the count it started with', async () => {
    for (let i = 0; i < 12; i++) await deadLetter(S(`s-${String(i).padStart(2, '0')}`), 'TRAY_UNAVAILABLE');
    // Every moved user fails again: a scanner without a horizon would chase them for ever (issue #10: "moved 9730 of 9730").
    const worker = failingWorker(new Set(Array.from({ length: 12 }, (_, i) => S(`s-${String(i).padStart(2, '0')}`))));
    const { io, deps: d } = deps({ sqs: worker.sqs });
    const result = await runRedrive({ dlqUrl: stack.dlqUrl, queueUrl: stack.queueUrl, errorCode: ['TRAY_UNAVAILABLE'], json: true }, d);
    worker.sqs.destroy();
    expect(result.exitCode).toBe(1);
    expect(worker.sentToQueue()).toHaveLength(12);
    expect(new Set(worker.sentToQueue()).size).toBe(12);
    const out = io.json<RedriveResult>();
    expect(out.moved).toBe(12);
    expect(out.scanned).toBeLessThanOrEqual(24);
    expect(await drain(stack.dlqUrl)).toHaveLength(12);
  });

  it('refuses an empty --user instead of moving the whole DLQ (usage error, exit 2)', async () => {
    await deadLetter(S('keep-me'), 'TRAY_REJECTED');
    const io = bufferIo();
    expect(
      await main(['redrive', '--user', '', '--dlq-url', stack.dlqUrl, '--queue-url', stack.queueUrl], {
        io,
        sqs: stack.sqs,
        receiveWaitSeconds: 0,
      }),
    ).toBe(2);
    expect(io.stderr).toContain('--user is empty');
    await expect(
      runRedrive({ dlqUrl: stack.dlqUrl, queueUrl: stack.queueUrl, errorCode: [' '] }, { io: bufferIo(), sqs: stack.sqs }),
    ).rejects.toMatchObject({ exitCode: 2 });
    expect(subsOf(await drain(stack.dlqUrl))).toEqual([S('keep-me')]);
    expect(await drain(stack.queueUrl)).toEqual([]);
  });

  it('a dry run leaves every message visible at once', async () => {
    await deadLetter(S('v1'), 'TRAY_REJECTED');
    await deadLetter(S('v2'), 'TRAY_UNAVAILABLE');
    const { deps: d } = deps();
    await runRedrive({ dlqUrl: stack.dlqUrl, user: [S('v1')], dryRun: true }, d);
    const visible = await stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.dlqUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }),
    );
    expect(visible.Messages ?? []).toHaveLength(2);
  });
});

describe('redrive checks the cause first (cognito-local)', () => {
  let cognito: CognitoLocal;
  beforeAll(async () => {
    cognito = await startCognitoLocal();
  });
  afterAll(async () => {
    await cognito?.stop();
  });

  it("MISSING_ATTRIBUTE: refuses while Cognito still lacks the attribute, then sends the user's current attributes once it is set", async () => {
    const pool = await cognito.createPool();
    const sub = await cognito.confirmedUser(pool, 'mia', { email: 'mia@example.com' });
    const stale = JSON.stringify(
      buildQueueMessage({
        userPoolId: pool,
        username: 'mia',
        userAttributes: { sub, email: 'mia@example.com' },
        attributeNames: ['email', 'custom:tenant_id'],
        source: 'signup',
      }),
    );
    const record = { messageId: 'm-mia', body: stale, attributes: { ApproximateReceiveCount: '1' } } as unknown as SQSRecord;
    const reason =
      'user mia lacks attribute "custom:tenant_id" that the plan needs: set it on the user in Cognito (and check that MESSAGE_ATTRIBUTES carries it), then redrive';
    await sendToDeadLetterQueue(stack.sqs, stack.dlqUrl, record, new ImportError('MISSING_ATTRIBUTE', 'plan', reason), {
      sub,
      userPoolId: pool,
    });

    const first = deps();
    const refused = await runRedrive(
      { dlqUrl: stack.dlqUrl, queueUrl: stack.queueUrl, user: [sub], json: true },
      { ...first.deps, cognito: cognito.client },
    );
    expect(refused.exitCode).toBe(1);
    expect(refused.data.moved).toBe(0);
    expect(refused.data.outcomes?.[0]).toMatchObject({
      outcome: 'cause still holds',
      note: expect.stringContaining('still lacks "custom:tenant_id"'),
    });
    expect(await drain(stack.queueUrl)).toEqual([]);

    await cognito.client.send(
      new AdminUpdateUserAttributesCommand({
        UserPoolId: pool,
        Username: 'mia',
        UserAttributes: [{ Name: 'custom:tenant_id', Value: 'tenant-7' }],
      }),
    );
    const second = deps();
    const fixed = await runRedrive(
      { dlqUrl: stack.dlqUrl, queueUrl: stack.queueUrl, user: [sub], json: true },
      { ...second.deps, cognito: cognito.client },
    );
    expect(fixed.exitCode).toBe(0);
    expect(fixed.data.outcomes?.[0]?.outcome).toBe('refreshed');
    const [sent] = await drain(stack.queueUrl);
    expect(JSON.parse(sent?.Body ?? '{}')).toMatchObject({
      sub,
      username: 'mia',
      attributes: { email: 'mia@example.com', 'custom:tenant_id': 'tenant-7' },
      source: 'signup',
    });
    expect(await drain(stack.dlqUrl)).toEqual([]);
  });
});

describe('redrive with an SQS move task (mocked: fauxqs lacks it)', () => {
  it('starts a move task from the DLQ to the import queue at the given rate', async () => {
    const sqs = new SQSClient({});
    const mock = mockClient(sqs);
    mock.on(StartMessageMoveTaskCommand).resolves({ TaskHandle: 'handle-1' });
    const io = bufferIo();
    const result = await runRedrive({ dlqArn: stack.dlqArn, queueArn: QUEUE_ARN, rate: 50, json: true }, { io, sqs });
    expect(result.exitCode).toBe(0);
    expect(mock.commandCalls(StartMessageMoveTaskCommand)[0]?.args[0].input).toEqual({
      SourceArn: stack.dlqArn,
      DestinationArn: QUEUE_ARN,
      MaxNumberOfMessagesPerSecond: 50,
    });
    expect(io.json()).toMatchObject({ mode: 'move-task', taskHandle: 'handle-1' });
  });

  it('refuses a rate above 500, and --max on a move task', async () => {
    const sqs = new SQSClient({});
    mockClient(sqs);
    await expect(runRedrive({ dlqArn: stack.dlqArn, queueArn: QUEUE_ARN, rate: 501 }, { io: bufferIo(), sqs })).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('--rate'),
    });
    await expect(runRedrive({ dlqArn: stack.dlqArn, queueArn: QUEUE_ARN, max: 5 }, { io: bufferIo(), sqs })).rejects.toMatchObject({
      exitCode: 2,
      message: expect.stringContaining('--max applies to selective moves'),
    });
  });

  it('reports a move task that cannot start; the "one task at a time" hint only when one is running', async () => {
    const sqs = new SQSClient({});
    const mock = mockClient(sqs);
    mock
      .on(StartMessageMoveTaskCommand)
      .rejects(Object.assign(new Error('There is already a task running'), { name: 'UnsupportedOperation' }));
    mock.on(ListMessageMoveTasksCommand).resolves({
      Results: [{ TaskHandle: 'h-running', Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 2, ApproximateNumberOfMessagesToMove: 9 }],
    });
    await expect(runRedrive({ dlqArn: stack.dlqArn, queueArn: QUEUE_ARN }, { io: bufferIo(), sqs })).rejects.toMatchObject({
      exitCode: 1,
      message: expect.stringMatching(/already running.*h-running.*redrive cancel/),
    });

    mock.reset();
    mock
      .on(StartMessageMoveTaskCommand)
      .rejects(Object.assign(new Error('Value arn:x for parameter SourceArn is invalid'), { name: 'InvalidParameterValue' }));
    mock.on(ListMessageMoveTasksCommand).resolves({ Results: [{ Status: 'COMPLETED' }] });
    const error = await runRedrive({ dlqArn: stack.dlqArn, queueArn: QUEUE_ARN }, { io: bufferIo(), sqs }).catch((e: Error) => e);
    expect(error).toMatchObject({ exitCode: 1, message: expect.stringContaining('--dlq-arn') });
    expect((error as Error).message).not.toContain('Only one');
    expect((error as Error).message).not.toContain('already running');

    mock.reset();
    mock
      .on(StartMessageMoveTaskCommand)
      .rejects(Object.assign(new Error('The security token included in the request is expired'), { name: 'ExpiredTokenException' }));
    mock.on(ListMessageMoveTasksCommand).rejects(Object.assign(new Error('expired'), { name: 'ExpiredTokenException' }));
    await expect(runRedrive({ dlqArn: stack.dlqArn, queueArn: QUEUE_ARN }, { io: bufferIo(), sqs })).rejects.toMatchObject({ exitCode: 4 });
  });

  it('status lists the tasks; cancel cancels the running one', async () => {
    const sqs = new SQSClient({});
    const mock = mockClient(sqs);
    mock.on(ListMessageMoveTasksCommand).resolves({
      Results: [
        {
          TaskHandle: 'running-handle',
          Status: 'RUNNING',
          SourceArn: stack.dlqArn,
          ApproximateNumberOfMessagesMoved: 3,
          ApproximateNumberOfMessagesToMove: 10,
          StartedTimestamp: 1_700_000_000_000,
        },
        { Status: 'COMPLETED', SourceArn: stack.dlqArn, ApproximateNumberOfMessagesMoved: 4, ApproximateNumberOfMessagesToMove: 4 },
      ],
    });
    mock.on(CancelMessageMoveTaskCommand).resolves({ ApproximateNumberOfMessagesMoved: 3 });

    const io = bufferIo();
    const status = await runRedriveStatus({ dlqArn: stack.dlqArn, json: true }, { io, sqs });
    expect(status.exitCode).toBe(0);
    expect(io.json<{ tasks: { status: string; moved: number }[] }>().tasks.map((t) => [t.status, t.moved])).toEqual([
      ['RUNNING', 3],
      ['COMPLETED', 4],
    ]);
    expect(mock.commandCalls(ListMessageMoveTasksCommand)[0]?.args[0].input).toMatchObject({ SourceArn: stack.dlqArn });

    const dry = await runRedriveCancel({ dlqArn: stack.dlqArn, dryRun: true }, { io: bufferIo(), sqs });
    expect(dry.data.cancelled?.taskHandle).toBe('running-handle');
    expect(mock.commandCalls(CancelMessageMoveTaskCommand)).toHaveLength(0);

    await runRedriveCancel({ dlqArn: stack.dlqArn }, { io: bufferIo(), sqs });
    expect(mock.commandCalls(CancelMessageMoveTaskCommand)[0]?.args[0].input).toEqual({ TaskHandle: 'running-handle' });
  });

  it('cancel without a running task fails with exit code 1', async () => {
    const sqs = new SQSClient({});
    mockClient(sqs)
      .on(ListMessageMoveTasksCommand)
      .resolves({ Results: [{ Status: 'COMPLETED' }] });
    await expect(runRedriveCancel({ dlqArn: stack.dlqArn }, { io: bufferIo(), sqs })).rejects.toMatchObject({ exitCode: 1 });
  });
});
