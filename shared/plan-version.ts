import { createHash } from 'node:crypto';
import type { ImportPlan } from './plan.js';

/**
 * The plan's version as far as a user's Tray instance is concerned: a short, stable hash of the
 * parts that shape the instance, recorded in the ledger when an import enables it and when an
 * upgrade completes. `upgrade` compares it with the current plan's to find users on an older plan.
 *
 * In: the solution, the instance name template, each auth slot's service, environment, scopes and
 * visibility, the config values (literal values and attribute references). Out, on purpose:
 * - credential sources (`auths[].data`): a changed credential is a rotation (`rotate`), not an
 *   upgrade, and secret *values* never enter a hash that sits in the ledger;
 * - auth names, the Tray user's name, `isTestUser`, the region: they shape other Tray objects or
 *   none, and an upgrade sends only the instance's slot values.
 * Key order and formatting of the plan file do not matter (canonical JSON).
 */
export function planVersion(plan: ImportPlan): string {
  const shape = {
    solutionId: plan.solutionId,
    instanceName: plan.instanceName,
    auths: plan.auths
      .map((a) => ({
        externalId: a.externalId,
        serviceId: a.serviceId,
        serviceEnvironmentId: a.serviceEnvironmentId,
        scopes: a.scopes ?? null,
        hidden: a.hidden ?? null,
      }))
      .sort((x, y) => (x.externalId < y.externalId ? -1 : x.externalId > y.externalId ? 1 : 0)),
    configValues: plan.configValues
      .map((c) => ({ externalId: c.externalId, value: c.value ?? null, attribute: c.attribute ?? null }))
      .sort((x, y) => (x.externalId < y.externalId ? -1 : x.externalId > y.externalId ? 1 : 0)),
  };
  return createHash('sha256').update(canonicalJson(shape)).digest('hex').slice(0, 12);
}

/** JSON with object keys sorted at every depth: the same value always gives the same text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}
