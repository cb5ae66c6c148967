import { relative } from 'node:path';
import { processIo } from '../../cli/toolkit/output.js';
import { Ledger } from '../../shared/ledger.js';
import { referencedSecrets } from '../../shared/plan.js';
import { createUserPool, planRun, startStandIns } from './prepare.js';
import { renderReport, renderServeHelp } from './report.js';
import { serve, serveInfo, webhookInfo, webhookPort } from './serve.js';
import { applyFunctionSettings, defaultTimeoutSeconds } from './settings.js';
import { loadTrigger, newSignUpRecord, postConfirmationFunction, signUpAll } from './sign-ups.js';
import type { LocalRunOptions, LocalRunResult, RunOutput } from './types.js';
import { verifyRun } from './verify.js';
import { watchProgress } from './watch.js';
import { startLocalWebhook } from './webhook.js';
import { startWorkers } from './workers.js';

/**
 * `npm start`: the whole pipeline on one machine, with the code that runs in AWS.
 *
 *   demo users ──(SignUp + AdminConfirmSignUp)──▶ cognito-local ──(Lambda Invoke, Cognito's own event)──▶ Lambda stand-in
 *   Lambda stand-in ──▶ functions/post-confirmation/handler.ts ──▶ SQS emulator
 *   SQS emulator ──(EventSourcePoller: Lambda's SQS semantics)──▶ the import worker, one instance per concurrent invocation
 *   import worker ──▶ Tray (stand-in, or yours) + DynamoDB ledger; failures ──▶ DLQ with their reason
 *
 * The trigger is its real Lambda entry point and the worker is built as its entry point builds
 * it, both once the emulators' endpoints and the functions' settings are in process.env, exactly
 * as Lambda configures them. Each step lives in its own module: prepare (input checks, stand-ins
 * up), settings, sign-ups, workers, watch (progress), verify (the verdict) and serve.
 */

export function processOutput(): RunOutput {
  const ci = process.env.CI !== undefined && !/^(|0|false)$/i.test(process.env.CI);
  const tty = process.stderr.isTTY && !ci ? process.stderr : undefined;
  const io = processIo();
  return { log: (line) => io.out(`${line}\n`), warn: (line) => io.err(`${line}\n`), tty };
}

export async function runLocalPipeline(options: LocalRunOptions = {}, output: RunOutput = processOutput()): Promise<LocalRunResult> {
  const startedAt = Date.now();
  const run = planRun(options, output);
  const standIns = await startStandIns(run, options);
  const { stack, cognito } = standIns;
  const restoreEnv = applyFunctionSettings({ plan: run.plan, planFile: run.planFile, trayUrl: standIns.trayUrl, verbose: run.verbose });

  let serving = false;
  const cleanUp = async () => {
    await standIns.close();
    restoreEnv();
  };
  try {
    const trigger = await loadTrigger();
    const workers = startWorkers(stack, output, () => serving);
    const ledger = new Ledger({ tableName: stack.tableName, client: stack.dynamodb });
    const pool = await createUserPool(cognito, run.plan, run.signUps);
    const cpuAtStart = process.cpuUsage();
    const problems: string[] = [];
    const signUps = newSignUpRecord();

    const progress = watchProgress({
      output,
      verbose: run.verbose,
      stack,
      ledger,
      userPoolId: pool.userPoolId,
      toSignUp: run.signUps.length,
      toEnable: run.users.length,
      signedUp: () => signUps.signedUp,
      retried: () => workers.counters.retried,
    });
    standIns.routePostConfirmation(
      postConfirmationFunction(trigger, { userPoolId: pool.userPoolId, record: signUps, problems, output, serving: () => serving }),
    );
    const signingUp = signUpAll({ cognito, ...pool, signUps: run.signUps, record: signUps, problems, output, verbose: run.verbose });

    // The worker imports while the users sign up, until the queue is empty.
    const importStartedAt = Date.now();
    const timeoutSeconds = options.timeoutSeconds ?? defaultTimeoutSeconds(run.signUps.length);
    let drained = true;
    try {
      await Promise.all([signingUp, workers.drain(() => signUps.done, timeoutSeconds * 1000)]);
    } catch (e) {
      drained = false;
      const message = (e as Error).message;
      problems.push(
        /not drained/.test(message)
          ? `the import queue was not drained within ${timeoutSeconds}s (--timeout)`
          : `the worker's event source failed: ${message}`,
      );
    }
    await progress.stop();

    const result = await verifyRun({
      run,
      standIns,
      pool,
      ledger,
      signUps,
      workers,
      drained,
      problems,
      startedAt,
      importStartedAt,
      cpuAtStart,
    });
    if (workers.counters.invocationErrors > 0)
      output.warn(
        `note: ${workers.counters.invocationErrors} invocation(s) failed as a whole (last: ${workers.lastInvocationError}); their records were retried.`,
      );
    for (const line of renderReport(result)) output.log(line);

    if (options.serve) {
      const webhook = await startLocalWebhook(stack, pool.userPoolId, webhookPort(options));
      result.serve = {
        ...serveInfo(stack, result.cognito, run.plan, run.users[0]),
        webhook: webhookInfo(webhook, stack),
        lifecycle: {
          planFile: relative(process.cwd(), run.planFile) || run.planFile,
          masterTokenSecret: stack.masterTokenSecretName,
          solutionId: run.plan.solutionId,
          sharedSecret: referencedSecrets(run.plan).ids[0],
        },
      };
      result.stop = serve(workers.poller, output, async () => {
        await webhook.close();
        await cleanUp();
      });
      serving = true;
      for (const line of renderServeHelp(result.serve)) output.log(line);
    }
    return result;
  } finally {
    if (!serving) await cleanUp();
  }
}
