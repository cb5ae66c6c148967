import { describe, expect, it } from 'vitest';
import { demoPlan } from '../local/demo.js';
import { type ImportPlan, parsePlan, parsePlanJson, referencedSecrets, requiredAttributes, trayEndpoint } from '../shared/plan.js';

const base = () => JSON.parse(JSON.stringify(demoPlan())) as Record<string, unknown> & ImportPlan;
const errorOf = (input: unknown) => {
  try {
    parsePlan(input);
  } catch (e) {
    return e as Error & { code: string };
  }
  throw new Error('expected the plan to be rejected');
};

describe('import plan', () => {
  it('accepts the demo plan and fills defaults', () => {
    const { externalUserId: _e, userName: _u, tray: _t, isTestUser: _i, ...minimal } = base();
    const plan = parsePlan(minimal);
    expect(plan.externalUserId).toBe('{{sub}}');
    expect(plan.userName).toBe('{{email}}');
    expect(plan.tray).toEqual({ region: 'us' });
    expect(plan.isTestUser).toBe(false);
  });

  it('names the JSON path and the fix for each problem, all at once', () => {
    const plan = base();
    plan.auths[0]!.serviceId = undefined as never;
    (plan.auths[0]!.data as Record<string, unknown>).api_key = { secret: { secretId: 'a', secretIdTemplate: 'b/{{sub}}', field: 'k' } };
    plan.configValues[0]!.externalId = 'notification_email';
    const error = errorOf(plan);
    expect(error.code).toBe('PLAN_INVALID');
    expect(error.message).toContain(`$.auths[0].serviceId: required: add the serviceId from Tray's "Authentication import generator"`);
    expect(error.message).toContain('$.auths[0].data.api_key.secret: set exactly one of "secretId"');
    expect(error.message).toContain('$.configValues[0].externalId: config slot ids start with "external_"');
  });

  it('reports a wrong type with what was found', () => {
    const plan = base();
    (plan as Record<string, unknown>).isTestUser = 'yes';
    expect(errorOf(plan).message).toContain('$.isTestUser: must be a boolean, not string "yes"');
  });

  it('rejects unknown fields (a typo would otherwise be ignored silently)', () => {
    const plan = base();
    (plan.auths[0] as Record<string, unknown>).serviceID = 'x';
    expect(errorOf(plan).message).toContain('$.auths[0]: unknown field "serviceID": remove it or check the spelling');
  });

  it('treats slot ids case-sensitively: two slots differing in case are distinct, an exact duplicate is an error', () => {
    const plan = base();
    plan.auths.push({ ...plan.auths[0]!, externalId: plan.auths[0]!.externalId.toUpperCase(), name: 'Second ({{email}})' });
    expect(() => parsePlan(plan)).not.toThrow();
    plan.auths.push({ ...plan.auths[0]!, name: 'Third ({{email}})' });
    expect(errorOf(plan).message).toContain(`$.auths[2].externalId: duplicates auths[0].externalId "external_acme_crm_authentication"`);
  });

  it('refuses two auths a retry could not tell apart (same service, same name)', () => {
    const plan = base();
    plan.auths.push({ ...plan.auths[0]!, externalId: 'external_second' });
    expect(errorOf(plan).message).toContain('$.auths[1].name: same name and serviceId as auths[0]: give each auth its own name');
    plan.auths[1]!.serviceId = 'svc-other';
    expect(() => parsePlan(plan)).not.toThrow();
  });

  it('lets per-user secret ids depend only on the sub, which users cannot choose', () => {
    const withTemplate = (secretIdTemplate: string) => {
      const plan = base();
      (plan.auths[0]!.data as Record<string, unknown>).api_key = { secret: { secretIdTemplate, field: 'k' } };
      return plan;
    };
    expect(() => parsePlan(withTemplate('acme/users/{{sub}}'))).not.toThrow();
    expect(errorOf(withTemplate('acme/tenants/{{custom:tenant_id}}')).message).toContain(
      '$.auths[0].data.api_key.secret.secretIdTemplate: may only use {{sub}}',
    );
    expect(errorOf(withTemplate('{{sub}}')).message).toContain('after a fixed prefix');
    expect(errorOf(withTemplate('acme/users/fixed')).message).toContain('may only use {{sub}}');
  });

  it('per-user secret templates: a fixed prefix ending in "/", then exactly one {{sub}} at the end', () => {
    const withTemplate = (secretIdTemplate: string) => {
      const plan = base();
      (plan.auths[0]!.data as Record<string, unknown>).api_key = { secret: { secretIdTemplate, field: 'k' } };
      return plan;
    };
    for (const ok of [
      'tray-import/users/{{sub}}',
      'a/{{sub}}',
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tray-import/users/{{sub}}',
    ]) {
      expect(() => parsePlan(withTemplate(ok)), ok).not.toThrow();
    }
    // "t{{sub}}" would be granted every secret starting with "t"; the others widen or break the namespace.
    for (const bad of [
      't{{sub}}',
      'tray-import/users-{{sub}}',
      'tray-import/users/{{sub}}/key',
      'tray-import/{{sub}}/{{sub}}',
      'tray-import/users/{{ sub }}',
      '/{{sub}}',
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:{{sub}}',
      'tray import/{{sub}}',
    ]) {
      const message = errorOf(withTemplate(bad)).message;
      expect(message, bad).toMatch(
        /\$\.auths\[0\]\.data\.api_key\.secret\.secretIdTemplate: (must be a fixed prefix ending in "\/" followed by exactly one \{\{sub\}\}|may only use \{\{sub\}\})/,
      );
    }
  });

  it('rejects broken templates and bad data sources', () => {
    const plan = base();
    plan.instanceName = 'Sync for {{email';
    (plan.auths[0]!.data as Record<string, unknown>).region = { literal: 'eu', attribute: 'custom:region' };
    const message = errorOf(plan).message;
    expect(message).toContain('$.instanceName: has unbalanced');
    expect(message).toContain(
      '$.auths[0].data.region: set exactly one of "literal", "attribute" or "secret" (found literal and attribute)',
    );
  });

  it('says when the file is not JSON', () => {
    expect(() => parsePlanJson('{ "version": 1,', 'plan.json')).toThrow(/plan.json is not valid JSON/);
  });

  it('lists the attributes messages must carry and the secrets the worker reads', () => {
    const plan = parsePlan({ ...base(), instanceName: '{{custom:company}} sync' });
    expect(requiredAttributes(plan)).toEqual(['custom:company', 'custom:tenant_id', 'email', 'name']);
    const perUser = parsePlan({
      ...base(),
      auths: [
        {
          ...base().auths[0]!,
          data: {
            token: { secret: { secretIdTemplate: 'acme/users/{{sub}}', field: 'token' } },
            key: { secret: { secretId: 'acme/shared', field: 'k' } },
          },
        },
      ],
    });
    expect(referencedSecrets(perUser)).toEqual({ ids: ['acme/shared'], templatePrefixes: ['acme/users/'] });
  });

  it('resolves the Tray endpoint: override, explicit URL, region', () => {
    expect(trayEndpoint(parsePlan({ ...base(), tray: { region: 'eu' } }), undefined)).toBe('https://eu1.tray.io/graphql');
    expect(trayEndpoint(parsePlan({ ...base(), tray: { graphqlUrl: 'https://proxy.example.com/graphql' } }), undefined)).toBe(
      'https://proxy.example.com/graphql',
    );
    expect(trayEndpoint(parsePlan(base()), 'http://127.0.0.1:9/graphql')).toBe('http://127.0.0.1:9/graphql');
    expect(errorOf({ ...base(), tray: { region: 'eu', graphqlUrl: 'https://x.example.com' } }).message).toContain(
      '$.tray: set "region" or "graphqlUrl", not both',
    );
  });

  it('sends to Tray over https only; plain http only to loopback stand-ins', () => {
    for (const url of [
      'http://127.0.0.1:9/graphql',
      'http://127.3.4.5/graphql',
      'http://localhost:4000/graphql',
      'http://[::1]:4000/graphql',
    ]) {
      expect(parsePlan({ ...base(), tray: { graphqlUrl: url } }).tray.graphqlUrl, url).toBe(url);
      expect(trayEndpoint(parsePlan(base()), url)).toBe(url);
    }
    for (const url of [
      'http://tray.io/graphql',
      'http://proxy.internal:8080/graphql',
      'http://127.0.0.1.evil.example/graphql',
      'http://localhost.evil.example/graphql',
      'ftp://tray.io/graphql',
    ]) {
      expect(errorOf({ ...base(), tray: { graphqlUrl: url } }).message, url).toMatch(
        /\$\.tray\.graphqlUrl: must be an https URL|tray\.graphqlUrl must use https/,
      );
      expect(() => trayEndpoint(parsePlan(base()), url), url).toThrow(/TRAY_GRAPHQL_URL (must use https|is not a URL)/);
    }
  });
});
