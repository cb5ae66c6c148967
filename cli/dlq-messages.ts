import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { type DeadLetter, readDeadLetter } from '../shared/dead-letter.js';
import type { Ledger } from '../shared/ledger.js';

/**
 * Reading the dead-letter queue without consuming it: messages are received with a short
 * visibility timeout (held while the scan goes on, so that each receive returns new ones) and
 * made visible again at once when the caller is done (`release`).
 *
 * The worker dead-letters with attributes naming the failure (DLQ_ATTRIBUTES). Messages moved
 * by SQS's own redrive (crashes, timeouts) have none; for them the ledger's lastError is shown.
 */
export interface HeldMessage {
  info: DeadLetter;
  body: string;
  receiptHandle: string;
  /** SQS's SentTimestamp (ms): when the message entered the DLQ. */
  sentAt: number | undefined;
  /** Sent after the scan's `startedAt`: it arrived while this run went on (e.g. a message the run moved failed again). */
  newer: boolean;
  /** The message attributes (string values), for exports. */
  attributes: Record<string, string>;
}

export interface ScanOptions {
  /** Seconds each received message stays hidden while the scan goes on. */
  holdSeconds: number;
  /** Long-poll wait per receive: with ≥1 an empty answer means the queue is (nearly) empty. */
  waitSeconds: number;
  /** Stop after this many distinct messages. */
  max: number;
  /** Messages whose SentTimestamp is after this (ms) are flagged `newer`. */
  startedAt?: number | undefined;
  /** Stop once this many messages sent before `startedAt` have been seen: the queue's count when the run started. */
  expected?: number | undefined;
}

export type ScanEnd = 'empty' | 'went-round' | 'max' | 'expected';

/**
 * A scan ends: when the queue answers with nothing, when it answers only with messages seen
 * already (it went round), after `max` messages, or once it has seen as many older messages as
 * the queue held at the start. Messages it received stay hidden (so each receive returns others)
 * until `release()`; a message that arrives during the scan is seen at most once too, so a
 * scan can never chase the messages its own run produces.
 */
export class DlqScanner {
  private readonly held = new Map<string, HeldMessage>();
  private readonly seen = new Set<string>();
  private olderSeen = 0;
  /** Older messages in the last receive (-1 before the first). */
  private lastOlder = -1;
  /** Why batches() stopped; undefined while it runs. */
  ended: ScanEnd | undefined;

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly options: ScanOptions,
  ) {}

  get seenCount(): number {
    return this.seen.size;
  }

  /** Batches of messages not seen before, until one of the ends above. */
  async *batches(): AsyncGenerator<HeldMessage[]> {
    this.ended = undefined;
    for (;;) {
      if (this.seen.size >= this.options.max) return void (this.ended = 'max');
      // The count is SQS's approximate one and may lag behind a message sent just before the start:
      // past it, the scan goes on only while receives still bring older messages (finitely many).
      if (this.options.expected !== undefined && this.olderSeen >= this.options.expected && this.lastOlder === 0)
        return void (this.ended = 'expected');
      const fresh = await this.receive(Math.min(10, this.options.max - this.seen.size));
      if (fresh.length === 0) return;
      yield fresh;
    }
  }

  /** One receive: the messages not seen before (empty when the queue had none, or only seen ones). */
  async receive(count = 10, waitSeconds = this.options.waitSeconds): Promise<HeldMessage[]> {
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: Math.max(1, Math.min(10, count)),
        VisibilityTimeout: this.options.holdSeconds,
        WaitTimeSeconds: waitSeconds,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) {
      this.ended = 'empty';
      return [];
    }
    const fresh: HeldMessage[] = [];
    for (const m of messages) {
      if (!m.MessageId || !m.ReceiptHandle) continue;
      const known = this.held.get(m.MessageId);
      if (known) {
        // Seen before and its hold ran out: only the newest receipt handle is valid.
        known.receiptHandle = m.ReceiptHandle;
        continue;
      }
      if (this.seen.has(m.MessageId)) continue;
      const sentAt = m.Attributes?.SentTimestamp !== undefined ? Number(m.Attributes.SentTimestamp) : undefined;
      const newer = this.options.startedAt !== undefined && sentAt !== undefined && sentAt > this.options.startedAt;
      const held: HeldMessage = {
        info: readDeadLetter(m),
        body: m.Body ?? '',
        receiptHandle: m.ReceiptHandle,
        sentAt,
        newer,
        attributes: stringAttributes(m),
      };
      this.held.set(m.MessageId, held);
      this.seen.add(m.MessageId);
      if (!newer) this.olderSeen++;
      fresh.push(held);
    }
    this.lastOlder = fresh.filter((h) => !h.newer).length;
    // Everything returned was seen already: the scan went round the queue.
    if (fresh.length === 0) this.ended = 'went-round';
    return fresh;
  }

  /** Forgets a message the caller deleted (it is still counted as seen). */
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

/**
 * How many messages the queue holds right now (visible, in flight and delayed): the most a run
 * that started now can find that were there before it. Undefined when it cannot be read
 * (permissions): the scan then ends only on an empty queue or --max.
 */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number | undefined> {
  try {
    const out = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
      }),
    );
    const a = out.Attributes ?? {};
    const n =
      Number(a.ApproximateNumberOfMessages ?? 0) +
      Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
      Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function stringAttributes(m: Message): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(m.MessageAttributes ?? {})) if (value.StringValue !== undefined) out[name] = value.StringValue;
  return out;
}

/** For messages without the worker's attributes: the ledger's lastError, if the user has one. */
export async function addLedgerErrors(messages: DeadLetter[], ledger: Ledger | undefined): Promise<void> {
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
