import { checkLinkSettings, createAppView } from '../../shared/app-view.js';
import type { LedgerEntry } from '../../shared/ledger.js';
import { buildLifecycleMessage, type LifecycleMessage } from '../../shared/lifecycle/message.js';
import { planVersion } from '../../shared/plan-version.js';
import { scrub } from '../../shared/redact.js';
import type { TraySolutionInstance } from '../../shared/tray/operations.js';
import { type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { chunks, type EnqueueFailure, SendInterrupted, SQS_BATCH_SIZE, sendBatch } from '../enqueue.js';
import { CliError, EXIT } from '../toolkit/errors.js';
import { loadPlan } from '../toolkit/flags.js';
import type { MasterTokenOptions } from '../toolkit/master-token.js';
import { type Io, table, warn } from '../toolkit/output.js';
import { progress } from '../toolkit/progress.js';

/**
 * `upgrade`: finds enabled users whose instance is behind, and enqueues an upgrade message for
 * each (`kind: 'upgrade'`, `source: 'plan-change'`; the worker runs shared/lifecycle/upgrade.ts):
 * - on an older plan: the ledger's planVersion is not the current plan's (shared/plan-version.ts);
 * - on an older solution version: Tray reports `hasNewerVersion` without needing the user.
 * Users whose new version `requiresUserInputToUpdateVersion` are not enqueued but reported, with
 * the command that mints their config-wizard link (or the link itself, with --embedded-id).
 *
 * The Tray side costs one call per 100 users: the solution's instances are listed with the master
 * token (flags included) through the CLI's share of Tray's rate budget (the TrayClient's default
 * pacer), not one look-up per user. So the scan is cheap to repeat, and that is how it resumes:
 * a rerun finds upgraded users up to date and skips them, and a user enqueued twice is upgraded
 * once (the worker skips an instance already up to date). No state file is needed.
 */
export interface UpgradeOptions extends GlobalOptions, MasterTokenOptions {
  plan?: string;
  userPoolId?: string;
  table?: string;
  queueUrl?: string;
  dryRun?: boolean;
  /** Mint a one-use config-wizard link for each user who must answer (needs the Embedded ID). */
  embeddedId?: string;
  embeddedHost?: string;
}

export type UpgradeReason = 'plan-change' | 'new-version';

export interface UpgradeCandidate {
  sub: string;
  username: string;
  instanceId: string;
  reasons: UpgradeReason[];
  /** The ledger's planVersion (undefined: imported before plan versions were recorded). */
  fromPlanVersion?: string | undefined;
  /** Tray's newer version needs values from the system (the plan): the upgrade sends them. */
  systemInput: boolean;
}

export interface NeedsUser {
  sub: string;
  username: string;
  instanceId: string;
  /** Mints the user's config-wizard link (one use, 5 minutes). */
  command: string;
  /** With --embedded-id: the link itself (one use, expires at `expiresAt`). */
  url?: string;
  expiresAt?: string;
}

export interface UpgradeSummary {
  userPoolId: string;
  dryRun: boolean;
  planVersion: string;
  solutionId: string;
  /** Enabled users looked at. */
  checked: number;
  upToDate: number;
  toUpgrade: UpgradeCandidate[];
  needsUser: NeedsUser[];
  /** Enabled in the ledger, but Tray lists no such instance of the plan's solution. */
  missingInTray: { sub: string; instanceId: string }[];
  enqueued: number;
  failed: EnqueueFailure[];
  interrupted?: string | undefined;
}

export async function runUpgrade(options: UpgradeOptions, deps?: CliDeps): Promise<CommandResult<UpgradeSummary>> {
  return withContext(options, deps, async (ctx) => {
    const plan = loadPlan(options.plan);
    if (plan.trayUserPer === 'company') {
      throw new CliError(
        'upgrade does not handle per-company plans yet ("trayUserPer": "company"): their instances belong to company entries',
      );
    }
    const embeddedId = options.embeddedId ?? ctx.env.TRAY_EMBEDDED_ID?.trim();
    if (embeddedId) checkLinkSettings({ plan, embeddedId, embeddedHost: options.embeddedHost });
    const userPoolId = await ctx.userPoolId(options.userPoolId);
    const queueUrl = options.dryRun ? '' : await ctx.setting('QueueUrl', options.queueUrl, '--queue-url');
    const ledger = await ctx.ledger(options.table);
    const { tray } = await ctx.trayClient(plan, options);
    const current = planVersion(plan);

    const summary: UpgradeSummary = {
      userPoolId,
      dryRun: options.dryRun === true,
      planVersion: current,
      solutionId: plan.solutionId,
      checked: 0,
      upToDate: 0,
      toUpgrade: [],
      needsUser: [],
      missingInTray: [],
      enqueued: 0,
      failed: [],
    };
    const bar = progress(ctx.io, 'checking users');
    try {
      // One paged listing of the solution's instances (flags included) for every user at once.
      const instances = new Map<string, TraySolutionInstance>();
      for (const i of await tray.listSolutionInstances({ kind: 'master' }, { solutionId: plan.solutionId })) instances.set(i.id, i);

      const toSend: LifecycleMessage[] = [];
      const needsUser: LedgerEntry[] = [];
      for await (const entry of ledger.entries(userPoolId)) {
        if (ctx.aborted) {
          summary.interrupted = 'aborted';
          break;
        }
        if (entry.status !== 'enabled' || !entry.instanceId || entry.company !== undefined) continue;
        summary.checked++;
        bar.increment();
        const instance = instances.get(entry.instanceId);
        if (!instance) {
          summary.missingInTray.push({ sub: entry.sub, instanceId: entry.instanceId });
          continue;
        }
        const flags = instance.solutionVersionFlags;
        if (flags?.hasNewerVersion && flags.requiresUserInputToUpdateVersion) {
          needsUser.push(entry);
          continue;
        }
        const reasons: UpgradeReason[] = [];
        if (entry.planVersion !== current) reasons.push('plan-change');
        if (flags?.hasNewerVersion) reasons.push('new-version');
        if (reasons.length === 0) {
          summary.upToDate++;
          continue;
        }
        summary.toUpgrade.push({
          sub: entry.sub,
          username: entry.username,
          instanceId: entry.instanceId,
          reasons,
          fromPlanVersion: entry.planVersion,
          systemInput: flags?.requiresSystemInputToUpdateVersion === true,
        });
        toSend.push(
          buildLifecycleMessage({ kind: 'upgrade', userPoolId, sub: entry.sub, username: entry.username, source: 'plan-change' }),
        );
      }

      const view = embeddedId
        ? createAppView({ ledger, tray, plan, userPoolId, embeddedId, embeddedHost: options.embeddedHost })
        : undefined;
      for (const entry of needsUser) {
        const command = `wizard-url ${entry.sub} --plan ${options.plan ?? 'FILE'}`;
        const row: NeedsUser = { sub: entry.sub, username: entry.username, instanceId: entry.instanceId as string, command };
        if (view && !options.dryRun) Object.assign(row, pick(await view.configWizardUrl(entry.sub)));
        summary.needsUser.push(row);
      }

      if (!options.dryRun) {
        for (const batch of chunks(toSend, SQS_BATCH_SIZE)) {
          const outcome = await sendBatch(ctx.sqs, queueUrl, batch, { sleep: ctx.sleep });
          summary.enqueued += outcome.sent.length;
          summary.failed.push(...outcome.failed);
        }
      }
    } catch (e) {
      if (e instanceof CliError || !(e instanceof SendInterrupted)) throw e;
      summary.interrupted = e.message;
    } finally {
      bar.stop();
    }

    for (const m of summary.missingInTray) {
      warn(ctx.io, `user ${m.sub}: Tray lists no instance ${m.instanceId} of ${plan.solutionId}; check with \`status ${m.sub} --live\``);
    }
    const found = summary.toUpgrade.length + summary.needsUser.length;
    const ok = !summary.interrupted && summary.failed.length === 0 && !(summary.dryRun && found > 0);
    write(ctx.io, ctx.json === true, summary, ok);
    return { exitCode: ok ? EXIT.ok : EXIT.failures, data: summary };
  });
}

function pick(link: { url: string; expiresAt: string }): Pick<NeedsUser, 'url' | 'expiresAt'> {
  return { url: link.url, expiresAt: link.expiresAt };
}

/**
 * Like emit(), but wizard links are written as they are: emit() scrubs registered secrets, and the
 * one-use code in each link is one (so that it never reaches a log). Everything else is scrubbed.
 */
function write(io: Io, json: boolean, summary: UpgradeSummary, ok: boolean): void {
  const urls = summary.needsUser.map((n) => n.url);
  const placeholder = (i: number) => `\u0000url${i}\u0000`;
  const masked = { ...summary, needsUser: summary.needsUser.map((n, i) => (n.url ? { ...n, url: placeholder(i) } : n)) };
  const unmask = (text: string, quoted: boolean) =>
    urls.reduce<string>(
      (t, url, i) => (url ? t.replace(quoted ? JSON.stringify(placeholder(i)) : placeholder(i), quoted ? JSON.stringify(url) : url) : t),
      text,
    );
  if (json) {
    io.out(`${unmask(scrub(JSON.stringify({ ok, ...masked }, null, 2)), true)}\n`);
    return;
  }
  const s = masked;
  const lines = [
    s.toUpgrade.length > 0
      ? table(
          s.toUpgrade,
          [
            ['sub', (c) => c.sub],
            ['username', (c) => c.username],
            ['why', (c) => c.reasons.join(', ')],
            ['from plan', (c) => c.fromPlanVersion ?? '(none)'],
            ['system input', (c) => (c.systemInput ? 'yes' : 'no')],
          ],
          100,
        )
      : 'nobody to upgrade',
    ...(s.needsUser.length > 0
      ? [
          '',
          `${s.needsUser.length} user(s) must answer the new solution version themselves (requiresUserInputToUpdateVersion): not upgraded; send them the config wizard:`,
          ...s.needsUser.map(
            (n) => `  ${n.sub} (${n.username}): ${n.url ? `${n.url}  (one use, expires ${n.expiresAt})` : `npm run cli -- ${n.command}`}`,
          ),
        ]
      : []),
    ...s.failed.map((f) => `FAILED ${f.sub}: ${f.reason}`),
    '',
    `plan ${s.planVersion}: ${s.checked} enabled user(s) checked, ${s.upToDate} up to date; ` +
      (s.dryRun ? `dry run: ${s.toUpgrade.length} would be enqueued` : `${s.enqueued} of ${s.toUpgrade.length} enqueued for upgrade`),
    ...(s.interrupted ? [`INTERRUPTED (${s.interrupted}): rerun to finish (upgrade is safe to repeat)`] : []),
  ];
  io.out(`${unmask(scrub(lines.join('\n')), false)}\n`);
}
