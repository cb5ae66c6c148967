import { AdminGetUserCommand } from '@aws-sdk/client-cognito-identity-provider';
import { ImportError } from '../../shared/errors.js';
import type { LedgerEntry } from '../../shared/ledger.js';
import { buildLifecycleMessage, type LifecycleMessage } from '../../shared/lifecycle/message.js';
import { type RotateStep, rotateUser, secretSlots, slotsReadingSecret } from '../../shared/lifecycle/rotate.js';
import { SecretReader } from '../../shared/secrets.js';
import { DEFAULT_TRAY_BUDGET_PER_SECOND } from '../../shared/tray/pacer.js';
import { userAttributes } from '../cognito-users.js';
import { type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { Pacer, SQS_BATCH_SIZE, sendBatch } from '../enqueue.js';
import { CliError, EXIT, UsageError } from '../toolkit/errors.js';
import { loadPlan } from '../toolkit/flags.js';
import type { MasterTokenOptions } from '../toolkit/master-token.js';
import { emit, keyValues, note } from '../toolkit/output.js';
import { progress } from '../toolkit/progress.js';

/**
 * Credential rotation on demand: `rotate --user SUB [--slot ID]`, `--all` (every enabled user) or
 * `--secret ID` (every user whose credentials read that secret) enqueue rotate messages for the
 * worker; `--user SUB --now` rotates that user here, with the worker's own workflow.
 */
export interface RotateOptions extends GlobalOptions, MasterTokenOptions {
  user?: string;
  slot?: string[];
  all?: boolean;
  secret?: string;
  now?: boolean;
  userPoolId?: string;
  plan?: string;
  table?: string;
  queueUrl?: string;
  dryRun?: boolean;
  /** Messages per second when enqueueing many (default: the Tray budget's worth of rotations). */
  rate?: number;
}

export interface RotateResult {
  mode: 'enqueue' | 'now';
  dryRun: boolean;
  slots: string[];
  users: string[];
  enqueued: number;
  outcome?: 'done' | 'skipped' | 'deferred' | 'failed';
  detail?: string | undefined;
  entry?: LedgerEntry | undefined;
  error?: ReturnType<ImportError['toJSON']> | undefined;
  steps: RotateStep[];
}

const LEASE_MS = 5 * 60_000;
const RUN_MARGIN_MS = 60_000;
/** About five Tray calls per rotation: enqueueing faster than the fleet rotates only lengthens the queue. */
const DEFAULT_RATE = DEFAULT_TRAY_BUDGET_PER_SECOND / 5;

export async function runRotate(options: RotateOptions, deps?: CliDeps): Promise<CommandResult<RotateResult>> {
  const targets = [options.user !== undefined, options.all === true, options.secret !== undefined].filter(Boolean).length;
  if (targets !== 1) throw new UsageError('rotate needs exactly one of --user SUB, --all or --secret ID');
  if (options.now && options.user === undefined) throw new UsageError('--now rotates one user: use it with --user SUB');
  if (options.slot?.length && options.user === undefined) throw new UsageError('--slot goes with --user SUB');
  return withContext(options, deps, async (ctx) => {
    const plan = loadPlan(options.plan);
    const userPoolId = await ctx.userPoolId(options.userPoolId);
    let slots = options.slot?.length ? options.slot : secretSlots(plan);
    if (options.secret !== undefined) {
      slots = slotsReadingSecret(plan, options.secret).slots;
      if (slots.length === 0)
        throw new CliError(`no auth of the plan reads secret "${options.secret}"; pass a secretId the plan names`, EXIT.failures);
    }
    const unknown = slots.filter((s) => !plan.auths.some((a) => a.externalId === s));
    if (unknown.length > 0) {
      throw new CliError(
        `--slot ${unknown.join(', ')}: not an auth of the plan (it has: ${plan.auths.map((a) => a.externalId).join(', ')})`,
        EXIT.usage,
      );
    }
    const result: RotateResult = {
      mode: options.now ? 'now' : 'enqueue',
      dryRun: options.dryRun === true,
      slots,
      users: [],
      enqueued: 0,
      steps: [],
    };
    const ledger = await ctx.ledger(options.table);
    const build = (sub: string): LifecycleMessage =>
      buildLifecycleMessage({
        kind: 'rotate',
        userPoolId,
        sub,
        source: 'operator',
        requestedAt: new Date(ctx.now()).toISOString(),
        ...(options.slot?.length || options.secret !== undefined ? { slots } : {}),
        ...(options.secret !== undefined ? { secretId: options.secret } : {}),
      });

    let username = options.user;
    if (options.user !== undefined) {
      const entry = await ledger.get({ userPoolId, sub: options.user });
      if (!entry) throw new CliError(`no ledger entry for ${options.user} in ${userPoolId}: import the user first`, EXIT.notFound);
      result.users = [options.user];
      username = entry.username;
    }

    if (options.now && !options.dryRun) {
      const sub = options.user as string;
      const { tray: untimed } = await ctx.trayClient(plan, options);
      const deadline = Date.now() + LEASE_MS - RUN_MARGIN_MS;
      try {
        const out = await rotateUser(build(sub), {
          plan,
          tray: untimed.withDeadline(deadline),
          ledger,
          secrets: new SecretReader({ client: ctx.secretsManager }),
          leaseMs: LEASE_MS,
          deadline,
          // The CLI reads Cognito, so credential fields taken from any attribute work here.
          userAttributes: async () => {
            const user = await ctx.cognito.send(new AdminGetUserCommand({ UserPoolId: userPoolId, Username: username }));
            return userAttributes(user.UserAttributes);
          },
          onStep: (step) => {
            result.steps.push(step);
            if (!ctx.json) note(ctx.io, `  ${step.type} ${step.slot}${'authId' in step ? ` ${step.authId}` : ''}`);
          },
        });
        if (out.outcome === 'deferred') throw out.error;
        result.outcome = out.outcome;
        result.detail = out.outcome === 'done' ? out.detail : out.reason;
        result.entry = out.entry;
      } catch (e) {
        if (!(e instanceof ImportError)) throw e;
        result.outcome = 'failed';
        result.error = e.toJSON();
      }
    } else if (options.user === undefined) {
      // --all / --secret: every enabled user of the ledger (a shared secret is read by all of them).
      const bar = progress(ctx.io, options.dryRun ? 'counting users' : 'enqueueing rotations');
      const queueUrl = options.dryRun ? '' : await ctx.setting('QueueUrl', options.queueUrl, '--queue-url');
      const pacer = new Pacer(options.rate ?? DEFAULT_RATE, ctx.now, ctx.sleep);
      let batch: LifecycleMessage[] = [];
      const flush = async () => {
        if (batch.length === 0 || options.dryRun) return;
        await pacer.take(batch.length);
        const out = await sendBatch(ctx.sqs, queueUrl, batch, { sleep: ctx.sleep });
        if (out.failed.length > 0)
          throw new CliError(`${out.failed.length} messages could not be enqueued: ${out.failed[0]?.reason}`, EXIT.failures);
        result.enqueued += batch.length;
        bar.increment(batch.length);
        batch = [];
      };
      try {
        for await (const entry of ledger.entries(userPoolId)) {
          if (entry.status !== 'enabled') continue;
          result.users.push(entry.sub);
          batch.push(build(entry.sub));
          if (batch.length === SQS_BATCH_SIZE) await flush();
        }
        await flush();
      } finally {
        bar.stop();
      }
    } else if (!options.dryRun) {
      const queueUrl = await ctx.setting('QueueUrl', options.queueUrl, '--queue-url');
      await sendBatch(ctx.sqs, queueUrl, [build(options.user)], { sleep: ctx.sleep });
      result.enqueued = 1;
    }

    emit(
      ctx.io,
      ctx.json,
      result,
      () => {
        if (options.dryRun)
          return `dry run: would ${options.now ? 'rotate' : 'enqueue rotations for'} ${result.users.length} user(s), slots ${slots.join(', ')}${result.users.length <= 20 ? `: ${result.users.join(', ')}` : ''}`;
        if (result.mode === 'enqueue')
          return `enqueued ${result.enqueued} rotation(s) (slots ${slots.join(', ')}); the worker rotates them`;
        if (result.outcome === 'failed' && result.error) {
          return [
            `rotation of ${options.user} FAILED: ${result.error.code} at ${result.error.step} (${result.error.kind}): ${result.error.message}`,
            result.error.kind === 'transient'
              ? 'transient: run it again (it resumes where it stopped)'
              : 'permanent: fix the cause, then run it again',
          ];
        }
        return [
          `rotation of ${options.user}: ${result.outcome} (${result.detail})`,
          keyValues({ authIds: result.entry?.authIds, lastRotatedAt: result.entry?.lastRotatedAt }),
        ];
      },
      result.outcome !== 'failed',
    );
    return { exitCode: result.outcome === 'failed' ? EXIT.failures : EXIT.ok, data: result };
  });
}
