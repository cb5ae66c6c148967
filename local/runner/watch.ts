import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { Ledger } from '../../shared/ledger.js';
import type { LocalStack } from '../local-stack.js';
import { createProgress, type ProgressCounts } from './progress.js';
import { LOCAL_SETTINGS } from './settings.js';
import type { RunOutput } from './types.js';
import { ledgerEntries, trayFaults } from './verify.js';

/**
 * Progress while users sign up and the worker imports them: ledger and DLQ sampled a few times
 * a second. Against the stand-in, every fault it injected is a Tray call the worker retried (in
 * the invocation, or on a later delivery).
 */
export function watchProgress(run: {
  output: RunOutput;
  verbose: boolean;
  stack: LocalStack;
  ledger: Ledger;
  userPoolId: string;
  toSignUp: number;
  toEnable: number;
  signedUp: () => number;
  retried: () => number;
}): { stop(): Promise<void> } {
  const { stack } = run;
  const sampled = { enabled: 0, deadLettered: 0 };
  const progress = createProgress(run.output, { bar: !run.verbose });
  const counts = (): ProgressCounts => ({
    signedUp: run.signedUp(),
    toSignUp: run.toSignUp,
    enabled: sampled.enabled,
    toEnable: run.toEnable,
    retried: run.retried() + trayFaults(stack),
    deadLettered: sampled.deadLettered,
  });
  const sample = async () => {
    const entries = await ledgerEntries(run.ledger, run.userPoolId);
    sampled.enabled = entries.filter((e) => e.status === 'enabled').length;
    const dlq = await stack.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: stack.dlqUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    sampled.deadLettered =
      Number(dlq.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(dlq.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      await sample().catch(() => undefined);
      progress.update(counts());
      await new Promise((r) => setTimeout(r, LOCAL_SETTINGS.sampleIntervalMs));
    }
  })();
  return {
    stop: async () => {
      sampling = false;
      await sampler;
      await sample().catch(() => undefined);
      progress.stop(counts());
    },
  };
}
