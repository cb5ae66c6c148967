import type { Context } from 'aws-lambda';
import { type ReconcileOptions, type ReconcileSummary, runReconcile } from '../../cli/commands/reconcile.js';
import type { CliDeps, CommandResult } from '../../cli/context.js';

/**
 * Scheduled `reconcile` (EventBridge, off unless `reconcileSchedule` is set): the operators' CLI
 * command, run with every setting given explicitly (no stack lookup), so users the trigger could
 * not enqueue, and users stuck without a lease, are enqueued again without anyone remembering to.
 * `failed` users are left alone, as in the CLI without --include-failed.
 *
 * It stops between pages shortly before the Lambda deadline (reconcile is safe to repeat: the
 * next run finishes), and fails the invocation when users could not be enqueued or the run was
 * cut short, so the function's Errors alarm says so.
 */
export interface ReconcileHandlerOptions {
  run?: (options: ReconcileOptions, deps: CliDeps) => Promise<CommandResult<ReconcileSummary>>;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

/** Time kept back from the deadline to stop between pages and report. */
const STOP_MARGIN_MS = 30_000;

export function createReconcileHandler(options: ReconcileHandlerOptions = {}) {
  const run = options.run ?? runReconcile;
  const env = options.env ?? process.env;
  const log = options.log ?? ((line: string) => console.log(line));
  const required = (name: string): string => {
    const value = env[name];
    if (!value) throw new Error(`${name} is not set: the stack sets it on the scheduled reconcile function`);
    return value;
  };

  return async (_event: unknown, context: Pick<Context, 'getRemainingTimeInMillis'>): Promise<{ enqueued: number; candidates: number }> => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(0, context.getRemainingTimeInMillis() - STOP_MARGIN_MS));
    const output: string[] = [];
    try {
      const olderThan = env.RECONCILE_OLDER_THAN_MINUTES ? Number(env.RECONCILE_OLDER_THAN_MINUTES) : undefined;
      const result = await run(
        {
          userPoolId: required('USER_POOL_ID'),
          queueUrl: required('QUEUE_URL'),
          table: required('LEDGER_TABLE'),
          attributes: required('MESSAGE_ATTRIBUTES'),
          ...(olderThan === undefined ? {} : { olderThan }),
          json: true,
        },
        {
          io: {
            out: (text) => void output.push(text),
            err: (text) => log(JSON.stringify({ level: 'WARN', message: text.trim() })),
            stderrIsTTY: false,
          },
          signal: controller.signal,
        },
      );
      const summary = result.data;
      const report = {
        enqueued: summary.enqueued,
        candidates: summary.candidates.length,
        failed: summary.failed.length,
        invalid: summary.invalid.length,
        interrupted: summary.interrupted,
      };
      log(JSON.stringify({ level: result.exitCode === 0 ? 'INFO' : 'ERROR', message: 'scheduled reconcile', ...report }));
      if (summary.failed.length > 0 || summary.interrupted) {
        throw new Error(
          `scheduled reconcile: ${summary.failed.length} user(s) not enqueued${summary.interrupted ? `, interrupted (${summary.interrupted})` : ''}; the next run retries`,
        );
      }
      return { enqueued: summary.enqueued, candidates: summary.candidates.length };
    } finally {
      clearTimeout(timer);
    }
  };
}

export const handler = createReconcileHandler();
