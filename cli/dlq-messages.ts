import { ChangeMessageVisibilityBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Ledger } from '../shared/ledger.js';
import { DLQ_ATTRIBUTES, parseQueueMessage } from '../shared/message.js';

/**
 * Reading the dead-letter queue without consuming it: messages are received with a short
 * visibility timeout (held while the scan goes on, so that each receive returns new ones) and
 * made visible again at once when the caller is done (`release`).
 *
 * The worker dead-letters with attributes naming the failure (DLQ_ATTRIBUTES). Messages moved
 * by SQS's own redrive (crashes, timeouts) have none; for them the ledger's lastError is shown.
 */
export interface DlqMessage {
  messageId: string;
  /** `worker`: dead-lettered with a reason; `sqs-redrive`: moved by the queue's redrive policy. */
  origin: 'worker' | 'sqs-redrive';
  sub?: string | undefined;
  username?: string | undefined;
  userPoolId?: string | undefined;
  errorCode?: string | undefined;
  step?: string | undefined;
  kind?: string | undefined;
  reason?: string | undefined;
  failedAt?: string | undefined;
  receiveCount?: number | undefined;
  /** Set when the body is not a valid queue message (it will fail again if redriven). */
  bodyProblem?: string | undefined;
}

export interface HeldMessage {
  info: DlqMessage;
  body: string;
  receiptHandle: string;
}

export interface ScanOptions {
  /** Seconds each received message stays hidden while the scan goes on. */
  holdSeconds: number;
  /** Long-poll wait per receive: with ≥1 an empty answer means the queue is (nearly) empty. */
  waitSeconds: number;
  /** Stop after this many distinct messages. */
  max: number;
}

export class DlqScanner {
  private readonly held = new Map<string, HeldMessage>();

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly options: ScanOptions,
  ) {}

  /** Batches of messages not seen before, until the queue has no more or `max` is reached. */
  async *batches(): AsyncGenerator<HeldMessage[]> {
    while (this.held.size < this.options.max) {
      const out = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.queueUrl,
          MaxNumberOfMessages: Math.min(10, this.options.max - this.held.size),
          VisibilityTimeout: this.options.holdSeconds,
          WaitTimeSeconds: this.options.waitSeconds,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const messages = out.Messages ?? [];
      if (messages.length === 0) return;
      const fresh: HeldMessage[] = [];
      for (const m of messages) {
        if (!m.MessageId || !m.ReceiptHandle) continue;
        const known = this.held.get(m.MessageId);
        if (known) {
          // Seen before and its hold ran out: only the newest receipt handle is valid.
          known.receiptHandle = m.ReceiptHandle;
          continue;
        }
        const held = { info: describeDlqMessage(m), body: m.Body ?? '', receiptHandle: m.ReceiptHandle };
        this.held.set(m.MessageId, held);
        fresh.push(held);
      }
      // Everything returned was seen already: the scan went round the queue.
      if (fresh.length === 0) return;
      yield fresh;
    }
  }

  /** Forgets a message the caller deleted. */
  forget(messageId: string): void {
    this.held.delete(messageId);
  }

  /** Makes every message still held visible again at once. Returns how many could not be released (they reappear when their hold ends). */
  async release(): Promise<number> {
    const all = [...this.held.values()];
    this.held.clear();
    let failed = 0;
    for (let i = 0; i < all.length; i += 10) {
      const chunk = all.slice(i, i + 10);
      try {
        const out = await this.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.receiptHandle, VisibilityTimeout: 0 })),
          }),
        );
        failed += out.Failed?.length ?? 0;
      } catch {
        failed += chunk.length;
      }
    }
    return failed;
  }
}

export function describeDlqMessage(m: Message): DlqMessage {
  const attr = (name: string): string | undefined => m.MessageAttributes?.[name]?.StringValue;
  const info: DlqMessage = {
    messageId: m.MessageId ?? '',
    origin: attr(DLQ_ATTRIBUTES.errorCode) ? 'worker' : 'sqs-redrive',
    sub: attr(DLQ_ATTRIBUTES.sub),
    userPoolId: attr(DLQ_ATTRIBUTES.userPoolId),
    errorCode: attr(DLQ_ATTRIBUTES.errorCode),
    step: attr(DLQ_ATTRIBUTES.step),
    kind: attr(DLQ_ATTRIBUTES.kind),
    reason: attr(DLQ_ATTRIBUTES.reason),
    failedAt: attr(DLQ_ATTRIBUTES.failedAt),
  };
  const count = attr(DLQ_ATTRIBUTES.receiveCount) ?? m.Attributes?.ApproximateReceiveCount;
  if (count !== undefined && Number.isFinite(Number(count))) info.receiveCount = Number(count);
  try {
    const message = parseQueueMessage(m.Body ?? '');
    info.sub ??= message.sub;
    info.userPoolId ??= message.userPoolId;
    info.username = message.username;
  } catch (e) {
    info.bodyProblem = (e as Error).message;
  }
  return info;
}

/** For messages without the worker's attributes: the ledger's lastError, if the user has one. */
export async function addLedgerErrors(messages: DlqMessage[], ledger: Ledger | undefined): Promise<void> {
  if (!ledger) return;
  for (const m of messages) {
    if (m.origin !== 'sqs-redrive' || !m.sub || !m.userPoolId) continue;
    const entry = await ledger.get({ userPoolId: m.userPoolId, sub: m.sub }).catch(() => undefined);
    if (!entry?.lastError) continue;
    m.errorCode = entry.lastError.code;
    m.step = entry.lastError.step;
    m.reason = `(from the ledger) ${entry.lastError.message}`;
    m.failedAt = entry.lastError.at;
  }
}
