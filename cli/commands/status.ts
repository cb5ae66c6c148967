import type { LedgerEntry } from '../../shared/ledger.js';
import type { TraySolutionInstance } from '../../shared/tray/operations.js';
import { type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { CliError, EXIT } from '../toolkit/errors.js';
import { loadPlan } from '../toolkit/flags.js';
import type { MasterTokenOptions } from '../toolkit/master-token.js';
import { emit, keyValues, table } from '../toolkit/output.js';

/** One user's import as the ledger records it and, with --live, as Tray reports it. */
export interface StatusOptions extends GlobalOptions, MasterTokenOptions {
  userPoolId?: string;
  table?: string;
  live?: boolean;
  /** For --live: the Tray region/endpoint (or TRAY_GRAPHQL_URL). */
  plan?: string;
}

export interface LiveStatus {
  trayUrl: string;
  instances: { id: string; name: string; enabled: boolean; solutionId?: string | undefined; created?: string | null | undefined }[];
  /** Differences between the ledger and Tray; empty when they agree. */
  problems: string[];
}

export interface StatusResult {
  found: boolean;
  entry: LedgerEntry | undefined;
  live?: LiveStatus | undefined;
}

export async function runStatus(sub: string, options: StatusOptions, deps?: CliDeps): Promise<CommandResult<StatusResult>> {
  if (!sub) throw new CliError("status needs the user's sub: `status SUB --user-pool-id ID`");
  return withContext(options, deps, async (ctx) => {
    const userPoolId = await ctx.userPoolId(options.userPoolId);
    const ledger = await ctx.ledger(options.table);
    const entry = await ledger.get({ userPoolId, sub });
    const data: StatusResult = { found: entry !== undefined, entry };

    if (entry && options.live) {
      const plan = options.plan ? loadPlan(options.plan) : undefined;
      const { tray, url } = await ctx.trayClient(plan, options);
      const live: LiveStatus = { trayUrl: url, instances: [], problems: [] };
      if (!entry.trayUserId) live.problems.push('the ledger has no Tray user id yet: nothing to look up in Tray');
      else {
        const instances: TraySolutionInstance[] = await tray.listSolutionInstances({ kind: 'master' }, { owner: entry.trayUserId });
        live.instances = instances.map((i) => ({
          id: i.id,
          name: i.name,
          enabled: i.enabled,
          solutionId: i.solution?.id,
          created: i.created,
        }));
        live.problems.push(...compare(entry, live.instances));
      }
      data.live = live;
    }

    const ok = entry !== undefined && (data.live?.problems.length ?? 0) === 0;
    emit(
      ctx.io,
      ctx.json,
      data,
      () => {
        if (!entry)
          return `no ledger entry for sub ${sub} in ${userPoolId}: never enqueued, or not processed yet (see \`reconcile --dry-run\`, \`import-user\`)`;
        const lines = [
          keyValues({
            userPoolId: entry.userPoolId,
            sub: entry.sub,
            username: entry.username,
            email: entry.email,
            source: entry.source,
            status: entry.status,
            enabled: entry.enabled,
            attempts: entry.attempts,
            trayUserId: entry.trayUserId,
            authIds: Object.keys(entry.authIds).length ? entry.authIds : undefined,
            instanceId: entry.instanceId,
            pending: Object.keys(entry.pending).length ? entry.pending : undefined,
            lastError: entry.lastError
              ? `${entry.lastError.code} at ${entry.lastError.step} (${entry.lastError.at}): ${entry.lastError.message}`
              : undefined,
            leaseUntil: entry.leaseUntil ? new Date(entry.leaseUntil).toISOString() : undefined,
            createdAt: entry.createdAt,
            updatedAt: entry.updatedAt,
            enabledAt: entry.enabledAt,
          }),
        ];
        if (data.live) {
          lines.push('', `Tray (${data.live.trayUrl}):`);
          lines.push(
            data.live.instances.length
              ? table(data.live.instances, [
                  ['instance', (i) => i.id],
                  ['name', (i) => i.name],
                  ['enabled', (i) => i.enabled],
                  ['solution', (i) => i.solutionId],
                ])
              : '  no solution instance',
          );
          lines.push(...(data.live.problems.length ? data.live.problems.map((p) => `MISMATCH: ${p}`) : ['ledger and Tray agree']));
        }
        return lines;
      },
      ok,
    );
    return { exitCode: ok ? EXIT.ok : EXIT.failures, data };
  });
}

function compare(entry: LedgerEntry, instances: LiveStatus['instances']): string[] {
  const problems: string[] = [];
  if (!entry.instanceId) return problems;
  const instance = instances.find((i) => i.id === entry.instanceId);
  if (!instance) problems.push(`the ledger's instance ${entry.instanceId} does not exist in Tray (removed?)`);
  else if (entry.status === 'enabled' && !instance.enabled)
    problems.push(`the ledger says enabled but Tray's instance ${instance.id} is disabled`);
  return problems;
}
