import { EventSourcePoller, type SqsHandler } from '../event-source-poller.js';
import { type LocalStack, queueDepth } from '../local-stack.js';
import { createWorkerInstance } from '../worker.js';
import { LOCAL_SETTINGS } from './settings.js';
import type { RunOutput } from './types.js';

/**
 * The import worker behind Lambda's SQS event source: one worker instance per concurrent
 * invocation, as Lambda runs one container per invocation (each with its own share of the Tray
 * budget and its own master-token cache), built as the tests build it (createWorkerInstance)
 * from the settings on process.env. What the invocations do is counted for the report.
 */
export interface WorkerFleet {
  poller: EventSourcePoller;
  counters: { invocations: number; retried: number; invocationErrors: number };
  /** The last invocation that failed as a whole, and why. */
  lastInvocationError: string | undefined;
  /** Polls until every sign-up is in and the import queue is empty; rejects after `timeoutMs`. */
  drain(signUpsDone: () => boolean, timeoutMs: number): Promise<void>;
}

export function startWorkers(stack: LocalStack, output: RunOutput, serving: () => boolean): WorkerFleet {
  const counters = { invocations: 0, retried: 0, invocationErrors: 0 };
  let lastInvocationError: string | undefined;

  const counted =
    (worker: SqsHandler): SqsHandler =>
    async (event, context) => {
      counters.invocations += 1;
      try {
        const response = await worker(event, context);
        const failures = response?.batchItemFailures?.length ?? 0;
        counters.retried += failures;
        if (serving())
          output.log(
            `worker: batch of ${event.Records.length}, ${event.Records.length - failures} done (imported or dead-lettered), ${failures} to retry`,
          );
        return response;
      } catch (e) {
        counters.invocationErrors += 1;
        counters.retried += event.Records.length;
        lastInvocationError = (e as Error).message;
        throw e;
      }
    };
  const workers = Array.from({ length: LOCAL_SETTINGS.pollers }, () => counted(createWorkerInstance(process.env).handler));
  const poller = new EventSourcePoller({
    sqs: stack.sqs,
    queueUrl: stack.queueUrl,
    handler: workers,
    batchSize: LOCAL_SETTINGS.batchSize,
    batchingWindowMs: LOCAL_SETTINGS.batchingWindowMs,
    concurrency: LOCAL_SETTINGS.pollers,
    functionTimeoutMs: LOCAL_SETTINGS.functionTimeoutMs,
    functionName: LOCAL_SETTINGS.workerFunctionName,
  });
  return {
    poller,
    counters,
    get lastInvocationError() {
      return lastInvocationError;
    },
    drain: (signUpsDone, timeoutMs) =>
      poller.runUntil(async () => signUpsDone() && (await queueDepth(stack.sqs, stack.queueUrl)) === 0, { timeoutMs }),
  };
}
