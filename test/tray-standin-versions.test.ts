import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SeedSolution, startTrayStandIn, type TrayStandIn } from '../local/tray-standin/index.js';
import { ImportError } from '../shared/errors.js';
import { staticMasterToken, TrayClient } from '../shared/tray/client.js';
import { Pacer } from '../shared/tray/pacer.js';

/**
 * The stand-in's solution versions (POST /_standin/solutions/<id>/versions): what instances'
 * solutionVersionFlags say after each kind of new version, and upgradeSolutionInstance moving an
 * instance to the newest version, refused (changing nothing) while a required new slot is empty.
 * Driven through the project's TrayClient, so the documents are the ones the worker sends.
 */
const MASTER = 'master-token-for-version-tests';
const SOLUTION: SeedSolution = {
  id: 'sol-v',
  title: 'Versioned',
  authSlots: [{ externalId: 'external_auth', title: 'Auth' }],
  configSlots: [{ externalId: 'external_email', title: 'Email', required: true }],
};

let s: TrayStandIn;
let tray: TrayClient;
beforeAll(async () => {
  s = await startTrayStandIn({ masterToken: MASTER, solutions: [SOLUTION], rateLimit: false, latencyMs: 0, enableDelayMs: 0 });
  tray = new TrayClient({ url: s.url, masterToken: staticMasterToken(() => MASTER), pacer: new Pacer({ ratePerSecond: 100, burst: 20 }) });
});
afterAll(async () => s?.close());

async function newInstance() {
  const userId = await tray.createExternalUser({ name: 'u', externalUserId: `ext-${Math.random()}`, isTestUser: true });
  const token = await tray.authorize(userId);
  const authId = await tray.createUserAuthentication(token, { name: 'a', serviceId: 'svc', serviceEnvironmentId: 'env', data: { k: 'v' } });
  const authValues = [{ externalId: 'external_auth', authId }];
  const { id } = await tray.createSolutionInstance(token, {
    solutionId: SOLUTION.id,
    instanceName: 'i',
    authValues,
    configValues: [{ externalId: 'external_email', value: 'a@example.com' }],
  });
  const flags = async () => (await tray.listSolutionInstances({ kind: 'user', token }, { id }))[0]?.solutionVersionFlags;
  return { token, id, authValues, flags };
}

const publish = (body: unknown) =>
  fetch(`${new URL(s.url).origin}/_standin/solutions/${SOLUTION.id}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('solution versions in the Tray stand-in', () => {
  it('a fresh instance is on the newest version', async () => {
    const { flags } = await newInstance();
    expect(await flags()).toEqual({
      hasNewerVersion: false,
      requiresUserInputToUpdateVersion: false,
      requiresSystemInputToUpdateVersion: false,
    });
  });

  it('a version with a hidden slot needs system input; the upgrade is refused without it, then moves the instance', async () => {
    const old = await newInstance();
    const res = await publish({ addConfigSlots: [{ externalId: 'external_region', title: 'Region', required: true, hidden: true }] });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ version: 2, requiresSystemInput: true, requiresUserInput: false });
    expect(await old.flags()).toEqual({
      hasNewerVersion: true,
      requiresUserInputToUpdateVersion: false,
      requiresSystemInputToUpdateVersion: true,
    });

    const refused = await tray
      .upgradeSolutionInstance(old.token, old.id, { authValues: old.authValues, configValues: [] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ImportError);
    expect((refused as ImportError).code).toBe('TRAY_REJECTED');
    expect((refused as ImportError).message).toContain('missing values for required config slot "external_region"');
    expect(s.snapshot().instances.find((i) => i.id === old.id)?.solutionVersion).toBe(1);

    const values = { authValues: old.authValues, configValues: [{ externalId: 'external_region', value: 'eu' }] };
    const upgraded = await tray.upgradeSolutionInstance(old.token, old.id, values);
    expect(upgraded.id).toBe(old.id);
    expect(await old.flags()).toMatchObject({ hasNewerVersion: false });
    const row = s.snapshot().instances.find((i) => i.id === old.id)!;
    expect(row.solutionVersion).toBe(2);
    expect(row.configValues).toEqual([
      { externalId: 'external_email', value: '"a@example.com"' },
      { externalId: 'external_region', value: '"eu"' },
    ]);
    // Again: harmless.
    await tray.upgradeSolutionInstance(old.token, old.id, values);
    expect(s.snapshot().instances.find((i) => i.id === old.id)?.solutionVersion).toBe(2);
  });

  it('a version with a visible required slot without default needs user input; one with a default needs nothing', async () => {
    const old = await newInstance();
    s.publishSolutionVersion(SOLUTION.id, { addConfigSlots: [{ externalId: 'external_pipeline', title: 'Pipeline', required: true }] });
    expect(await old.flags()).toEqual({
      hasNewerVersion: true,
      requiresUserInputToUpdateVersion: true,
      requiresSystemInputToUpdateVersion: false,
    });
    const fresh = await newInstance().catch((e: unknown) => e);
    // A new instance is created on the newest version (its wizard would ask for the new slot).
    expect(fresh).not.toBeInstanceOf(Error);

    const later = await newInstance();
    s.publishSolutionVersion(SOLUTION.id, {
      addConfigSlots: [{ externalId: 'external_limit', title: 'Limit', defaultValue: 5, required: true }],
    });
    expect(await later.flags()).toEqual({
      hasNewerVersion: true,
      requiresUserInputToUpdateVersion: false,
      requiresSystemInputToUpdateVersion: false,
    });
    await tray.upgradeSolutionInstance(later.token, later.id, { authValues: later.authValues, configValues: [] });
    expect(await later.flags()).toMatchObject({ hasNewerVersion: false });
  });

  it('requiresSystemInput (changed mappings) can be said outright', async () => {
    const old = await newInstance();
    s.publishSolutionVersion(SOLUTION.id, { requiresSystemInput: true });
    expect(await old.flags()).toMatchObject({ hasNewerVersion: true, requiresSystemInputToUpdateVersion: true });
  });

  it('the admin endpoint refuses typos, unknown solutions and slots that exist', async () => {
    const typo = await publish({ addConfigSlot: [] });
    expect(typo.status).toBe(400);
    const unknown = await fetch(`${new URL(s.url).origin}/_standin/solutions/nope/versions`, { method: 'POST', body: '{}' });
    expect(unknown.status).toBe(404);
    const clash = await publish({ addConfigSlots: [{ externalId: 'external_email', title: 'Again' }] });
    expect(clash.status).toBe(409);
    expect(((await clash.json()) as { error: string }).error).toContain('already exists');
  });
});
