import { DeleteMessageBatchCommand, type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { lambdaContext } from './lambda-context.js';

/**
 * Lambda's SQS event source mapping, locally: receive a batch, invoke the handler with an
 * SQSEvent, delete what succeeded, leave batch item failures (and every record of a batch
 * whose invocation threw or timed out) for redelivery after the visibility timeout. The queue's
 * redrive policy moves a message to the DLQ after maxReceiveCount, as in AWS.
 */
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

export interface PollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn?: string;
  /**
   * The function, or one instance per concurrent invocation: a Lambda container serves one
   * invocation at a time, so per-container state (the Tray pacer's share) must not be shared
   * between the concurrent invocations here either.
   */
  handler: SqsHandler | SqsHandler[];
  /** Records per invocation (Lambda: up to 10,000 with a batching window; one receive gets at most 10). */
  batchSize?: number;
  /** Lambda's MaximumBatchingWindowInSeconds, in ms: how long it gathers records for one batch. */
  batchingWindowMs?: number;
  /** Concurrent invocations (Lambda's maxConcurrency). */
  concurrency?: number;
  functionTimeoutMs?: number;
  functionName?: string;
}

export interface BatchResult {
  received: number;
  deleted: number;
  failed: number;
  invocationError?: string;
}

export class EventSourcePoller {
  private readonly options: Required<Omit<PollerOptions, 'queueArn'>> & { queueArn: string };

  constructor(options: PollerOptions) {
    this.options = {
      batchSize: 10,
      batchingWindowMs: 0,
      concurrency: 1,
      functionTimeoutMs: 30_000,
      functionName: 'import-worker',
      queueArn: options.queueArn ?? `arn:aws:sqs:us-east-1:000000000000:${options.queueUrl.split('/').pop()}`,
      ...options,
    };
  }

  /**
   * Gathers one batch and invokes the handler with it; `received: 0` when nothing was visible.
   * Like Lambda's event source, it keeps receiving (10 at a time, SQS's maximum) until the batch
   * is full, the batching window is over, or the queue has nothing more to give.
   */
  async pollOnce(waitTimeSeconds = 0, slot = 0): Promise<BatchResult> {
    const { sqs, queueUrl, batchSize, batchingWindowMs } = this.options;
    const windowEnds = Date.now() + batchingWindowMs;
    const messages: Message[] = [];
    for (;;) {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, batchSize - messages.length),
          WaitTimeSeconds: messages.length === 0 ? waitTimeSeconds : 0,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
      );
      const got = out.Messages ?? [];
      messages.push(...got);
      if (messages.length >= batchSize) break;
      if (got.length === 0) {
        if (messages.length === 0 || Date.now() >= windowEnds) break;
        await new Promise((r) => setTimeout(r, Math.min(100, windowEnds - Date.now())));
      }
    }
    if (messages.length === 0) return { received: 0, deleted: 0, failed: 0 };
    return this.invoke(messages, slot);
  }

  /** Polls with `concurrency` parallel pollers until `done()` or the time limit. */
  async runUntil(done: () => boolean | Promise<boolean>, options: { timeoutMs: number; idleWaitMs?: number }): Promise<void> {
    const stopAt = Date.now() + options.timeoutMs;
    const loop = async (slot: number) => {
      while (!(await done())) {
        if (Date.now() > stopAt) return;
        const result = await this.pollOnce(0, slot);
        if (result.received === 0) await new Promise((r) => setTimeout(r, options.idleWaitMs ?? 100));
      }
    };
    await Promise.all(Array.from({ length: this.options.concurrency }, (_, slot) => loop(slot)));
    if (!(await done())) throw new Error(`the queue was not drained within ${options.timeoutMs} ms`);
  }

  private async invoke(messages: Message[], slot: number): Promise<BatchResult> {
    const event: SQSEvent = { Records: messages.map((m) => this.toRecord(m)) };
    const context = lambdaContext(this.options.functionName, this.options.functionTimeoutMs);
    let failedIds: Set<string>;
    let invocationError: string | undefined;
    try {
      const { handler } = this.options;
      const fn = Array.isArray(handler) ? (handler[slot % handler.length] as SqsHandler) : handler;
      const response = await withTimeout(fn(event, context), this.options.functionTimeoutMs);
      failedIds = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (e) {
      // A thrown error or a timeout fails the whole batch, as in Lambda.
      invocationError = (e as Error).message;
      failedIds = new Set(messages.map((m) => m.MessageId as string));
    }
    const toDelete = messages.filter((m) => !failedIds.has(m.MessageId as string));
    // SQS deletes at most 10 messages per call.
    for (let i = 0; i < toDelete.length; i += 10) {
      await this.options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.options.queueUrl,
          Entries: toDelete.slice(i, i + 10).map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle as string })),
        }),
      );
    }
    return {
      received: messages.length,
      deleted: toDelete.length,
      failed: messages.length - toDelete.length,
      ...(invocationError ? { invocationError } : {}),
    };
  }

  private toRecord(m: Message): SQSRecord {
    const attrs = m.Attributes ?? {};
    return {
      messageId: m.MessageId as string,
      receiptHandle: m.ReceiptHandle as string,
      body: m.Body ?? '',
      attributes: {
        ApproximateReceiveCount: attrs.ApproximateReceiveCount ?? '1',
        SentTimestamp: attrs.SentTimestamp ?? String(Date.now()),
        SenderId: attrs.SenderId ?? 'local',
        ApproximateFirstReceiveTimestamp: attrs.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      },
      messageAttributes: Object.fromEntries(
        Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [
          k,
          { dataType: v.DataType ?? 'String', stringValue: v.StringValue, stringListValues: [], binaryListValues: [] },
        ]),
      ),
      md5OfBody: m.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: this.options.queueArn,
      awsRegion: 'us-east-1',
    };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Task timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
