import { describe, expect, it } from 'vitest';
import { demoPlan } from '../local/demo.js';
import { LedgerEntrySchema } from '../shared/ledger.js';
import { renderUpgradeValues } from '../shared/lifecycle/upgrade-values.js';
import type { ImportPlan } from '../shared/plan.js';
import { canonicalJson, planVersion } from '../shared/plan-version.js';

const plan = demoPlan();
const entry = LedgerEntrySchema.parse({
  userPoolId: 'pool',
  sub: '00000000-0000-4000-8000-000000000001',
  username: 'user001',
  email: 'user001@example.com',
  status: 'enabled',
  authIds: { external_acme_crm_authentication: 'auth-1' },
  instanceId: 'inst-1',
  createdAt: 'x',
  updatedAt: 'x',
});

describe('planVersion', () => {
  it('changes with what shapes the instance, not with credentials, names or key order', () => {
    const v = planVersion(plan);
    expect(v).toMatch(/^[0-9a-f]{12}$/);
    const auth = plan.auths[0]!;
    const same: ImportPlan[] = [
      { ...plan, userName: '{{sub}}', isTestUser: !plan.isTestUser },
      { ...plan, auths: [{ ...auth, name: 'Other name {{email}}', data: { api_key: { literal: 'x' } } }] },
    ];
    for (const p of same) expect(planVersion(p)).toBe(v);
    const changed: ImportPlan[] = [
      { ...plan, solutionId: 'other' },
      { ...plan, instanceName: 'Sync {{email}}' },
      { ...plan, auths: [{ ...auth, scopes: ['contacts.read'] }] },
      { ...plan, configValues: [...plan.configValues, { externalId: 'external_new', value: 1 }] },
    ];
    for (const p of changed) expect(planVersion(p)).not.toBe(v);
  });

  it('canonical JSON sorts keys at every depth', () => {
    expect(canonicalJson({ b: [{ d: 1, c: 2 }], a: null })).toBe('{"a":null,"b":[{"c":2,"d":1}]}');
  });
});

describe('renderUpgradeValues', () => {
  it("renders config values from the ledger's sub, username and email, auths from authIds", () => {
    expect(renderUpgradeValues(plan, entry)).toEqual({
      authValues: [{ externalId: 'external_acme_crm_authentication', authId: 'auth-1' }],
      configValues: [
        { externalId: 'external_notification_email', value: 'user001@example.com' },
        { externalId: 'external_sync_interval_minutes', value: 15 },
      ],
    });
  });

  it('renders other attributes from those the import message carried (ledger `attributes`)', () => {
    const tenant: ImportPlan = { ...plan, configValues: [{ externalId: 'external_tenant', attribute: 'custom:tenant_id' }] };
    expect(renderUpgradeValues(tenant, { ...entry, attributes: { 'custom:tenant_id': 'acme-7' } }).configValues).toEqual([
      { externalId: 'external_tenant', value: 'acme-7' },
    ]);
  });

  it('refuses, naming the value and the fix, an attribute the ledger does not keep and a slot without an auth', () => {
    const tenant: ImportPlan = { ...plan, configValues: [{ externalId: 'external_tenant', attribute: 'custom:tenant_id' }] };
    expect(() => renderUpgradeValues(tenant, entry)).toThrow(/keeps no "custom:tenant_id".*literal "value"/);
    const extraSlot: ImportPlan = {
      ...plan,
      auths: [...plan.auths, { ...plan.auths[0]!, externalId: 'external_billing', serviceId: 'svc-b' }],
    };
    expect(() => renderUpgradeValues(extraSlot, entry)).toThrow(/auth slot "external_billing", for which user .* has no auth/);
    expect(() => renderUpgradeValues(plan, { ...entry, email: undefined })).toThrow(/keeps no "email"/);
  });
});
