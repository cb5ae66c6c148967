import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { DEFAULT_STACK_NAME, SERVICE_NAME } from '../shared/names.js';
import { runAppStatus, runWizardUrl } from './commands/app-view.js';
import { runBackfill } from './commands/backfill.js';
import { runDlqDelete, runDlqExport, runDlqList } from './commands/dlq.js';
import { runImportUser } from './commands/import-user.js';
import { runOffboard } from './commands/offboard.js';
import { runPreflight } from './commands/preflight.js';
import { DEFAULT_OLDER_THAN_MINUTES, runReconcile } from './commands/reconcile.js';
import { runRedrive, runRedriveCancel, runRedriveStatus } from './commands/redrive.js';
import { runRotate } from './commands/rotate.js';
import { runStatus } from './commands/status.js';
import { runAttachTrigger, runDetachTrigger } from './commands/trigger.js';
import { runUpgrade } from './commands/upgrade.js';
import type { CliDeps, CommandResult, GlobalOptions } from './context.js';
import { CliError, type ExitCode } from './toolkit/errors.js';
import { collect, number } from './toolkit/flags.js';

/**
 * The operators' CLI: `npm run cli -- <command> --help`. Every command reads the deployed
 * stack's outputs (--stack-name) unless flags give the resources; changes have --dry-run;
 * --json prints one JSON document on stdout.
 */
const withMasterToken = (cmd: Command): Command =>
  cmd
    .option(
      '--master-token-secret <id>',
      'Secrets Manager id of the Tray master token (default: the stack output MasterTokenSecretId; env TRAY_MASTER_TOKEN also works)',
    )
    .option('--master-token-file <path>', 'file holding the Tray master token')
    // Accepted only to refuse it without echoing the value: a token on the command line ends up in shell history.
    .addOption(new Option('--master-token <token>').hideHelp());

const withPool = (cmd: Command): Command =>
  cmd.option('--user-pool-id <id>', 'Cognito user pool id (default: the stack output UserPoolId)');
const withTable = (cmd: Command): Command => cmd.option('--table <name>', 'ledger table (default: the stack output LedgerTableName)');
const withQueue = (cmd: Command): Command => cmd.option('--queue-url <url>', 'import queue URL (default: the stack output QueueUrl)');
const withDryRun = (cmd: Command): Command => cmd.option('--dry-run', 'show what would be done; change nothing');

export function buildProgram(deps: CliDeps, onResult: (code: ExitCode) => void): Command {
  const program = new Command(SERVICE_NAME)
    .description("Operators' commands for the Cognito → Tray Embedded authentication import")
    .option(
      '--stack-name <name>',
      'deployed CloudFormation stack whose outputs locate queues, table, functions and secret',
      DEFAULT_STACK_NAME,
    )
    .option('--region <region>', 'AWS region (default: AWS_REGION / your profile)')
    .option('--profile <name>', 'AWS profile from ~/.aws/config (default: AWS_PROFILE / the default chain)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--json', 'print the result as one JSON document on stdout')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');
  const io = deps.io;
  if (io) program.configureOutput({ writeOut: (text) => io.out(text), writeErr: (text) => io.err(text) });

  const act =
    <O extends GlobalOptions>(run: (options: O, deps: CliDeps) => Promise<CommandResult<unknown>>) =>
    async (_opts: unknown, cmd: Command) => {
      onResult((await run(options<O>(cmd), deps)).exitCode);
    };
  const actWithArg =
    <O extends GlobalOptions>(run: (arg: string, options: O, deps: CliDeps) => Promise<CommandResult<unknown>>) =>
    async (arg: string, _opts: unknown, cmd: Command) => {
      onResult((await run(arg, options<O>(cmd), deps)).exitCode);
    };

  withMasterToken(
    program
      .command('preflight')
      .description('check a plan against the live Tray account: solution published, slot ids exact, gaps reported')
      .option('--plan <file>', 'import plan (JSON)')
      .option('--strict', 'fail on warnings too'),
  ).action(act(runPreflight));

  const dlq = program
    .command('dlq')
    .description('dead-letter queue: `dlq list` shows the failed users and why; `dlq export`, `dlq delete`');
  dlq
    .command('list')
    .description('list dead-lettered messages (user, error code, step, reason) without removing them')
    .option('--dlq-url <url>', 'dead-letter queue URL (default: the stack output DeadLetterQueueUrl)')
    .option('--max <n>', 'list at most this many messages', number, 100)
    .option('--table <name>', 'ledger table, for the lastError of messages without a reason (default: the stack output)')
    .action(act(runDlqList));
  dlq
    .command('export')
    .description('write every dead-lettered message (body and attributes) to a JSON-lines file, removing nothing')
    .option('--out <file>', 'file to create (never overwritten; default: dlq-export-<time>.jsonl)')
    .option('--dlq-url <url>', 'dead-letter queue URL (default: the stack output DeadLetterQueueUrl)')
    .option('--max <n>', 'export at most this many messages', number)
    .action(act(runDlqExport));
  withDryRun(
    dlq
      .command('delete')
      .description('delete stale dead-lettered messages by user, error code and/or age; exports them first')
      .option('--user <sub>', 'only this user (repeatable, or comma-separated)', collect)
      .option('--code <code>', 'only this error code, e.g. MISSING_ATTRIBUTE (repeatable)', collect)
      .option('--older-than <duration>', 'only messages in the DLQ for longer than this: 90s, 30m, 12h, 7d, 2w')
      .option('--export <file>', 'where the messages are exported before deletion (default: dlq-deleted-<time>.jsonl)')
      .option('--max <n>', 'scan at most this many messages', number)
      .option('--table <name>', 'ledger table, to match --code on messages without attributes')
      .option('--dlq-url <url>', 'dead-letter queue URL (default: the stack output DeadLetterQueueUrl)'),
  ).action(act(runDlqDelete));

  const redrive = withDryRun(
    program
      .command('redrive')
      .description('move dead-lettered messages back to the import queue (all with an SQS move task, or only matching ones)')
      .option('--user <sub>', 'only this user (repeatable, or comma-separated)', collect)
      .option('--error-code <code>', 'only messages with this error code, e.g. TRAY_REJECTED (repeatable)', collect)
      .option('--rate <n>', 'messages per second (move task: MaxNumberOfMessagesPerSecond, at most 500)', number)
      .option('--max <n>', 'selective move: scan at most this many messages', number)
      .option('--dlq-url <url>', 'dead-letter queue URL (default: the stack output DeadLetterQueueUrl)')
      .option('--dlq-arn <arn>', 'dead-letter queue ARN (default: the stack output DeadLetterQueueArn)')
      .option('--queue-url <url>', 'import queue URL, for selective moves (default: the stack output QueueUrl)')
      .option('--queue-arn <arn>', "import queue ARN, the move task's destination (default: the stack output QueueArn)")
      .option('--table <name>', 'ledger table, to match --error-code on messages without attributes')
      .option(
        '--force',
        'also move messages whose cause still holds (e.g. MISSING_ATTRIBUTE while Cognito still lacks the attribute): they will fail again',
      )
      .option(
        '--watch <seconds>',
        'after a selective move, keep watching the DLQ this long for moved users that fail again (exit 1 if any)',
        number,
      ),
  ).action(act(runRedrive));
  redrive
    .command('status')
    .description("list the DLQ's message move tasks")
    .option('--dlq-arn <arn>', 'dead-letter queue ARN (default: the stack output DeadLetterQueueArn)')
    .action(act(runRedriveStatus));
  withDryRun(
    redrive
      .command('cancel')
      .description('cancel the running message move task')
      .option('--dlq-arn <arn>', 'dead-letter queue ARN (default: the stack output DeadLetterQueueArn)'),
  ).action(act(runRedriveCancel));

  withDryRun(
    withTable(
      withQueue(
        withPool(
          program
            .command('backfill')
            .description("enqueue the pool's existing CONFIRMED users that are not imported yet (resumable)")
            .option('--plan <file>', 'import plan: the message carries the attributes it needs')
            .option('--attributes <list>', 'instead of --plan: attributes to carry, e.g. email,name,custom:tenant_id')
            .option('--filter <expr>', 'Cognito ListUsers filter, e.g. \'email ^= "a"\'')
            .option(
              '--no-federated',
              'skip users who sign in through an identity provider (EXTERNAL_PROVIDER); by default they are imported like CONFIRMED and RESET_REQUIRED users',
            )
            .option(
              '--rate <n>',
              "users per second, at most what the workers drain (the default): (Tray budget − 0.5) / (4 + the plan's auths)",
              number,
            )
            .option(
              '--tray-budget <n>',
              "the deployment's trayBudgetPerSecond (default: the stack output TrayBudgetPerSecond, else 25)",
              number,
            )
            .option('--max-users <n>', 'enqueue at most this many users in this run; rerun the same command to go on', number)
            .option(
              '--max-queue-depth <n>',
              'wait while the import queue holds more messages than this (default: ten minutes of draining)',
              number,
            )
            .option('--state <file>', 'state file for resuming (default: .backfill-state-<poolId>.json)')
            .option('--restart', 'ignore the state file and start from the first page'),
        ),
      ),
    ),
  ).action(act(runBackfill));

  withDryRun(
    withTable(
      withQueue(
        withPool(
          program
            .command('reconcile')
            .description(
              'enqueue confirmed users missing from the ledger, or retrying/stuck for longer than --older-than (failed ones with --include-failed)',
            )
            .option('--plan <file>', 'import plan: the message carries the attributes it needs')
            .option('--attributes <list>', 'instead of --plan: attributes to carry')
            .option(
              '--older-than <minutes>',
              "leave users changed more recently than this alone; the default is twice the worker's longest retry delay (15 min), so no pending retry is raced",
              number,
              DEFAULT_OLDER_THAN_MINUTES,
            )
            .option(
              '--include-failed',
              'also re-enqueue users whose import failed permanently (ledger status failed), with fresh attributes from Cognito: after fixing their cause',
            )
            .option('--filter <expr>', 'Cognito ListUsers filter')
            .option('--no-federated', 'skip users who sign in through an identity provider (EXTERNAL_PROVIDER)')
            .option('--rate <n>', 'users per second', number),
        ),
      ),
    ),
  ).action(act(runReconcile));

  withMasterToken(
    withTable(
      withPool(
        program
          .command('status')
          .description("a user's ledger entry; with --live also the instance Tray reports")
          .argument('<sub>', "the user's Cognito sub")
          .option('--live', "also ask Tray (master token) for the user's solution instances")
          .option('--plan <file>', 'for --live: the plan whose Tray region to ask (or set TRAY_GRAPHQL_URL)'),
      ),
    ),
  ).action(actWithArg(runStatus));

  withTable(
    withPool(
      program
        .command('app-status')
        .description(
          "what the company's app sees of a user (shared/app-view.ts getImportStatus): status, Tray ids, last error; no Tray call",
        )
        .argument('<sub>', "the user's Cognito sub"),
    ),
  ).action(actWithArg(runAppStatus));

  withMasterToken(
    withTable(
      withPool(
        program
          .command('wizard-url')
          .description(
            "a one-use link to Tray's config wizard of the user's instance (or, with --slot, the auth dialog of one slot); printed to stdout only; it EXPIRES IN 5 MINUTES",
          )
          .argument('<sub>', "the user's Cognito sub")
          .option('--plan <file>', 'import plan: its Tray region picks the embedded host, its auths give the slots')
          .option(
            '--slot <externalId>',
            "an auth slot of the plan (auths[].externalId, case-sensitive): link to that slot's auth dialog instead",
          )
          .option('--embedded-id <id>', "your Embedded ID from Tray's Embedded settings (default: env TRAY_EMBEDDED_ID)")
          .option(
            '--embedded-host <host>',
            "host of Tray's embedded UI, e.g. embedded.eu1.tray.io (default: from the plan's region; required when the plan sets tray.graphqlUrl)",
          ),
      ),
    ),
  ).action(actWithArg(runWizardUrl));

  for (const [name, run, description] of [
    [
      'attach-trigger',
      runAttachTrigger,
      'make the deployed post-confirmation function the trigger of an existing pool (keeps every other setting)',
    ],
    ['detach-trigger', runDetachTrigger, 'remove the post-confirmation trigger from a pool (keeps every other setting)'],
  ] as const) {
    withDryRun(
      withPool(
        program
          .command(name)
          .description(description)
          .option('--function-arn <arn>', 'the function (default: the stack output PostConfirmationFunctionArn)')
          .option(
            '--force',
            name === 'attach-trigger'
              ? 'replace another existing post-confirmation trigger'
              : 'remove the trigger even if it is another function',
          ),
      ),
    ).action(act(run));
  }

  withMasterToken(
    withDryRun(
      withQueue(
        withTable(
          withPool(
            program
              .command('import-user')
              .description("import one user now with the worker's workflow (or --enqueue it)")
              .argument('<sub>', "the user's Cognito sub")
              .option('--plan <file>', 'import plan (JSON)')
              .option('--enqueue', "only send the user's message to the import queue")
              .option('--force', 'import a user who is not CONFIRMED'),
          ),
        ),
      ),
    ),
  ).action(actWithArg(runImportUser));

  withMasterToken(
    withDryRun(
      withQueue(
        withTable(
          withPool(
            program
              .command('upgrade')
              .description(
                "enqueue an upgrade for enabled users on an older plan or solution version; report those whose new version needs the user's input, with their config-wizard link",
              )
              .option('--plan <file>', 'the current import plan (JSON)')
              .option('--embedded-id <id>', "with it, mint each waiting user's one-use config-wizard link (default: env TRAY_EMBEDDED_ID)")
              .option('--embedded-host <host>', "host of Tray's embedded UI (default: from the plan's region)"),
          ),
        ),
      ),
    ),
  ).action(act(runUpgrade));

  withMasterToken(
    withDryRun(
      withQueue(
        withTable(
          withPool(
            program
              .command('rotate')
              .description(
                'replace credentials in Tray after a secret changed: --user SUB [--slot ID] | --all | --secret ID (enqueued; --now runs one user here)',
              )
              .option('--user <sub>', "one user's Cognito sub")
              .option('--slot <externalId>', 'only this auth slot (repeatable)', collect)
              .option('--all', 'every enabled user')
              .option('--secret <id>', 'every enabled user, the slots reading this secret')
              .option('--now', "rotate --user here, with the worker's workflow, instead of enqueueing")
              .option('--rate <perSecond>', "messages per second when enqueueing many (default: the Tray budget's worth)", number)
              .option('--plan <file>', 'import plan (JSON)'),
          ),
        ),
      ),
    ),
  ).action(act(runRotate));

  withMasterToken(
    withDryRun(
      withQueue(
        withTable(
          withPool(
            program
              .command('offboard')
              .description(
                "apply the plan's offboarding policy to deleted users (enqueue, or --now); --deleted finds users deleted from Cognito",
              )
              .argument('[subs...]', "the users' Cognito subs")
              .option('--deleted', 'every ledger user whose Cognito user no longer exists (the catch-all for missed deletion events)')
              .option('--now', "run the worker's offboarding workflow in this process instead of enqueueing")
              .option('--plan <file>', 'import plan (JSON): its offboarding policy (for --now and --dry-run)')
              .option('--rate <n>', 'with --deleted: Cognito AdminGetUser calls per second (default 10)', number),
          ),
        ),
      ),
    ),
  ).action(async (subs: string[], _opts: unknown, cmd: Command) => {
    onResult((await runOffboard(subs, options(cmd), deps)).exitCode);
  });

  program.addHelpText(
    'after',
    `
Examples:
  $ npm run cli -- preflight --plan plan.json
  $ npm run cli -- dlq list                  (exit 3 when messages wait)
  $ npm run cli -- dlq export --out dlq.jsonl
  $ npm run cli -- dlq delete --user 3f1c... --dry-run
  $ npm run cli -- redrive --user 3f1c... --watch 60
  $ npm run cli -- redrive --error-code TRAY_UNAVAILABLE --dry-run
  $ npm run cli -- redrive --rate 20          (all, with an SQS move task)
  $ npm run cli -- redrive status
  $ npm run cli -- redrive cancel
  $ npm run cli -- backfill --user-pool-id eu-west-1_AbC --plan plan.json --rate 20
  $ npm run cli -- reconcile --plan plan.json --dry-run
  $ npm run cli -- reconcile --plan plan.json --include-failed   (after fixing failed users' attributes)
  $ npm run cli -- status 3f1c... --live --plan plan.json
  $ npm run cli -- attach-trigger --user-pool-id eu-west-1_AbC --dry-run
  $ npm run cli -- detach-trigger --user-pool-id eu-west-1_AbC
  $ npm run cli -- import-user 3f1c... --plan plan.json
  $ npm run cli -- offboard 3f1c... --plan plan.json --dry-run
  $ npm run cli -- offboard --deleted             (users deleted from Cognito whose deletion event was missed)
  $ npm run cli -- app-status 3f1c...
  $ npm run cli -- wizard-url 3f1c... --plan plan.json --embedded-id acme   (one-use link, expires in 5 minutes)
  $ npm run cli -- upgrade --plan plan.json --dry-run

The Tray master token comes from TRAY_MASTER_TOKEN, --master-token-file or
--master-token-secret (default: the stack's secret), never from a flag value.
Exit codes: 0 success, 1 failures found or partial, 2 usage error, 3 the DLQ is not
empty (dlq list), 4 AWS credentials missing/expired/denied, 5 stack or resource not found,
6 AWS unreachable (network).
See docs/operators.md.`,
  );
  return program;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The command's options merged with the program's (--json, --stack-name, --region). */
function options<O extends GlobalOptions>(cmd: Command): O {
  const all = cmd.optsWithGlobals<O & { masterToken?: string }>();
  if (all.masterToken !== undefined) {
    throw new CliError(
      '--master-token is not accepted: a token on the command line ends up in shell history. Set TRAY_MASTER_TOKEN, or pass --master-token-file PATH or --master-token-secret SECRET_ID',
    );
  }
  return all;
}
