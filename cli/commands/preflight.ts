import { ImportError } from '../../shared/errors.js';
import type { ImportPlan } from '../../shared/plan.js';
import type { TraySolution } from '../../shared/tray/operations.js';
import { type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { CliError, EXIT } from '../toolkit/errors.js';
import { loadPlan } from '../toolkit/flags.js';
import type { MasterTokenOptions } from '../toolkit/master-token.js';
import { emit, table } from '../toolkit/output.js';

/**
 * Checks a plan against the live Tray account before it is deployed or used: the solution is
 * published, every auth slot and config slot id the plan names exists exactly (Tray's ids are
 * case-sensitive, and a wrong case fails only when an instance is created), and what the plan
 * leaves empty is pointed out.
 */
export interface PreflightOptions extends GlobalOptions, MasterTokenOptions {
  plan?: string;
  /** Warnings fail too. */
  strict?: boolean;
}

export type FindingLevel = 'ok' | 'warning' | 'error';

export interface Finding {
  level: FindingLevel;
  check: string;
  message: string;
}

export interface PreflightReport {
  ok: boolean;
  plan: string | undefined;
  trayUrl: string | undefined;
  solution: { id: string; title: string; authSlots: string[]; configSlots: string[] } | undefined;
  findings: Finding[];
  errors: number;
  warnings: number;
}

export async function runPreflight(options: PreflightOptions, deps?: CliDeps): Promise<CommandResult<PreflightReport>> {
  return withContext(options, deps, async (ctx) => {
    const findings: Finding[] = [];
    const report: PreflightReport = {
      ok: false,
      plan: options.plan,
      trayUrl: undefined,
      solution: undefined,
      findings,
      errors: 0,
      warnings: 0,
    };

    let plan: ImportPlan | undefined;
    try {
      plan = loadPlan(options.plan);
      findings.push({
        level: 'ok',
        check: 'plan',
        message: `${options.plan} is a valid plan (${plan.auths.length} auth(s), ${plan.configValues.length} config value(s))`,
      });
    } catch (e) {
      if (!(e instanceof CliError) || !options.plan) throw e;
      findings.push({ level: 'error', check: 'plan', message: e.message });
    }

    if (plan) {
      const { tray, url } = await ctx.trayClient(plan, options);
      report.trayUrl = url;
      let solutions: TraySolution[] | undefined;
      try {
        solutions = await tray.listSolutions();
      } catch (e) {
        const error = e instanceof ImportError ? e : undefined;
        const hint =
          error?.code === 'TRAY_UNAUTHORIZED'
            ? 'Tray refused the master token: check TRAY_MASTER_TOKEN / --master-token-file / --master-token-secret, and that the token belongs to this region'
            : 'check the network and the plan\'s "tray" region';
        findings.push({
          level: 'error',
          check: 'tray',
          message: `listing the solutions at ${url} failed: ${(e as Error).message}; ${hint}`,
        });
      }
      if (solutions) checkSolution(plan, solutions, findings, report);
    }

    report.errors = findings.filter((f) => f.level === 'error').length;
    report.warnings = findings.filter((f) => f.level === 'warning').length;
    report.ok = report.errors === 0 && (!options.strict || report.warnings === 0);
    emit(
      ctx.io,
      ctx.json,
      report,
      () => [
        table(
          findings,
          [
            ['', (f) => ({ ok: 'ok', warning: 'WARN', error: 'FAIL' })[f.level]],
            ['check', (f) => f.check],
            ['finding', (f) => f.message],
          ],
          200,
        ),
        '',
        report.ok
          ? `preflight passed${report.warnings ? ` with ${report.warnings} warning(s)` : ''}`
          : `preflight FAILED: ${report.errors} error(s), ${report.warnings} warning(s)${options.strict && report.errors === 0 ? ' (--strict)' : ''}`,
      ],
      report.ok,
    );
    return { exitCode: report.ok ? EXIT.ok : EXIT.failures, data: report };
  });
}

function checkSolution(plan: ImportPlan, solutions: TraySolution[], findings: Finding[], report: PreflightReport): void {
  const solution = solutions.find((s) => s.id === plan.solutionId);
  if (!solution) {
    const nearMiss = solutions.find((s) => s.id.toLowerCase() === plan.solutionId.toLowerCase());
    findings.push({
      level: 'error',
      check: 'solution',
      message: nearMiss
        ? `solutionId "${plan.solutionId}" is not a published solution; did you mean "${nearMiss.id}" (${nearMiss.title})?`
        : `solutionId "${plan.solutionId}" is not among the ${solutions.length} published solution(s) of this account/region; publish it in Tray, or fix "solutionId" / "tray.region"${solutions.length === 0 ? ' (the wrong region answers with an empty list)' : ''}`,
    });
    return;
  }
  report.solution = {
    id: solution.id,
    title: solution.title,
    authSlots: solution.authSlots.map((s) => s.externalId),
    configSlots: solution.configSlots.map((s) => s.externalId),
  };
  findings.push({ level: 'ok', check: 'solution', message: `"${solution.title}" (${solution.id}) is published` });

  const authIds = solution.authSlots.map((s) => s.externalId);
  plan.auths.forEach((auth, i) => checkSlotId(`auths[${i}].externalId`, auth.externalId, authIds, 'auth slot', findings));
  const configIds = solution.configSlots.map((s) => s.externalId);
  plan.configValues.forEach((config, i) =>
    checkSlotId(`configValues[${i}].externalId`, config.externalId, configIds, 'config slot', findings),
  );

  const planned = new Set(plan.configValues.map((c) => c.externalId));
  for (const slot of solution.configSlots) {
    if (planned.has(slot.externalId)) continue;
    // Tray's schema makes defaultValue a non-null Json: a slot without a default says "null".
    if (slot.defaultValue === undefined || slot.defaultValue === null || slot.defaultValue === 'null') {
      findings.push({
        level: 'warning',
        check: 'config',
        message: `config slot "${slot.externalId}"${slot.title ? ` (${slot.title})` : ''} has no default value and the plan does not set it: if it is required, enabling instances fails; add it to "configValues"`,
      });
    }
  }
  const coveredAuths = new Set(plan.auths.map((a) => a.externalId));
  for (const slot of solution.authSlots) {
    if (coveredAuths.has(slot.externalId)) continue;
    // Tray's API does not say which slots are hidden: any slot the plan leaves empty is reported.
    findings.push({
      level: 'warning',
      check: 'auth',
      message: `auth slot "${slot.externalId}"${slot.title ? ` (${slot.title})` : ''} is not filled by the plan: if it is hidden ("Not visible to the users") or required, enabling instances fails; add an entry to "auths" for it`,
    });
  }
}

function checkSlotId(path: string, id: string, slotIds: string[], kind: string, findings: Finding[]): void {
  if (slotIds.includes(id)) {
    findings.push({ level: 'ok', check: path, message: `${kind} "${id}" exists` });
    return;
  }
  const nearMiss = slotIds.find((s) => s.toLowerCase() === id.toLowerCase());
  findings.push({
    level: 'error',
    check: path,
    message: nearMiss
      ? `${kind} "${id}" does not exist (ids are case-sensitive); did you mean "${nearMiss}"?`
      : `${kind} "${id}" does not exist in the solution; its ${kind}s are: ${slotIds.map((s) => `"${s}"`).join(', ') || 'none'}`,
  });
}
