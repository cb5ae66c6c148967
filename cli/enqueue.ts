import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { QueueMessage } from '../shared/message.js';
import { backoffMs, RETRY_POLICY } from '../shared/retry.js';

/**
 * Enqueueing users for import (backfill, reconcile): ten messages per SendMessageBatch, entries
 * that SQS reports as failed retried with backoff, a whole call that keeps failing reported as an
 * interruption so that the caller can save where it got to and stop.
 */
export const SQS_BATCH_SIZE = 10;

export interface EnqueueFailure {
  sub: string;
  username?: string | undefined;
  reason: string;
}

export interface BatchOutcome<M = QueueMessage> {
  sent: M[];
  failed: EnqueueFailure[];
}

/** The queue could not be reached even after retries: stop, keep state, let the operator rerun. */
export class SendInterrupted extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'SendInterrupted';
  }
}

export interface SendOptions {
  attempts?: number;
  baseDelayMs?: number;
  sleep: (ms: number) => Promise<void>;
}

/** Imports and lifecycle messages alike: anything naming its user. */
export async function sendBatch<M extends { sub: string; username?: string | undefined } = QueueMessage>(
  sqs: SQSClient,
  queueUrl: string,
  messages: readonly M[],
  options: SendOptions,
): Promise<BatchOutcome<M>> {
  if (messages.length > SQS_BATCH_SIZE) throw new Error(`at most ${SQS_BATCH_SIZE} messages per batch`);
  const attempts = options.attempts ?? RETRY_POLICY.enqueue.maxAttempts;
  const backoff = { ...RETRY_POLICY.enqueue, baseDelayMs: options.baseDelayMs ?? RETRY_POLICY.enqueue.baseDelayMs };
  const sent: M[] = [];
  const failed: EnqueueFailure[] = [];
  let pending = messages.map((message, i) => ({ id: `m${i}`, message, lastReason: '' }));

  for (let attempt = 1; pending.length > 0; attempt++) {
    let out;
    try {
      out = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: pending.map((p) => ({ Id: p.id, MessageBody: JSON.stringify(p.message) })),
        }),
      );
    } catch (e) {
      if (attempt >= attempts) {
        throw new SendInterrupted(
          `SendMessageBatch to ${queueUrl} failed ${attempts} times: ${(e as Error).name}: ${(e as Error).message}`,
          { cause: e },
        );
      }
      await options.sleep(backoffMs(attempt, backoff));
      continue;
    }
    const ok = new Set((out.Successful ?? []).map((s) => s.Id));
    const failures = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
    const retry: typeof pending = [];
    for (const p of pending) {
      if (ok.has(p.id)) {
        sent.push(p.message);
        continue;
      }
      const f = failures.get(p.id);
      const reason = f ? `${f.Code ?? 'Error'}${f.Message ? `: ${f.Message}` : ''}` : 'not reported as sent';
      // SenderFault: the entry itself is wrong (too large, invalid); sending it again cannot help.
      if (f?.SenderFault || attempt >= attempts) failed.push({ sub: p.message.sub, username: p.message.username, reason });
      else retry.push({ ...p, lastReason: reason });
    }
    pending = retry;
    if (pending.length > 0) await options.sleep(backoffMs(attempt, backoff));
  }
  return { sent, failed };
}

/** Spaces sends so that no more than `perSecond` items go out per second on average. */
export class Pacer {
  private next = 0;

  constructor(
    private readonly perSecond: number | undefined,
    private readonly now: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {}

  async take(items: number): Promise<void> {
    if (!this.perSecond) return;
    const now = this.now();
    if (this.next > now) await this.sleep(this.next - now);
    this.next = Math.max(this.next, now) + (items * 1000) / this.perSecond;
  }
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
