import { App, Stack } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../functions/import-worker/settings.js';
import { secretResources } from '../infra/secret-grants.js';
import { demoPlan } from '../local/demo.js';
import { type ImportPlan, parsePlan } from '../shared/plan.js';
import { masterTokenCoverageProblem, prefixCoversSecret, trayUrlProblem } from '../shared/security-policy.js';

/** Issue #11, item 2: a per-user secret template must not synthesize access beyond its own namespace. */
const withTemplate = (secretIdTemplate: string): ImportPlan => {
  const plan = JSON.parse(JSON.stringify(demoPlan())) as ImportPlan;
  (plan.auths[0]!.data as Record<string, unknown>).api_key = { secret: { secretIdTemplate, field: 'k' } };
  return plan;
};
const stack = () =>
  new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Grants', { env: { account: '123456789012', region: 'eu-west-1' } });
const MASTER = { name: 'tray-auth-import/master-token' };

describe('per-user secret grants', () => {
  it('grants only <prefix>* for a valid template', () => {
    const s = stack();
    const { prefixes } = secretResources(s, withTemplate('tray-import/users/{{sub}}'), MASTER);
    expect(prefixes.map((p) => s.resolve(p) as unknown).map((p) => JSON.stringify(p))).toEqual([
      expect.stringContaining(':secret:tray-import/users/*'),
    ]);
  });

  it.each(['t{{sub}}', 'tray-{{sub}}', 'tray-import/users/{{sub}}-x', '{{sub}}'])(
    'refuses %s at synth even if the plan skipped validation',
    (template) => {
      // Built as an unvalidated object: the grant builder must not rely on the plan validator.
      expect(() => secretResources(stack(), withTemplate(template), MASTER)).toThrow(/fixed prefix/);
    },
  );

  it('refuses a prefix covering the master token secret (name or ARN) at synth', () => {
    expect(() => secretResources(stack(), withTemplate('tray-auth-import/{{sub}}'), MASTER)).toThrow(
      /covers the master token's secret "tray-auth-import\/master-token"/,
    );
    const arn = { arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:tray-import/master-token-AbC123' };
    expect(() => secretResources(stack(), withTemplate('tray-import/{{sub}}'), arn)).toThrow(/covers the master token's secret/);
    expect(() =>
      secretResources(stack(), withTemplate('arn:aws:secretsmanager:eu-west-1:123456789012:secret:tray-import/{{sub}}'), arn),
    ).toThrow(/covers/);
    expect(() => secretResources(stack(), withTemplate('tray-import/users/{{sub}}'), arn)).not.toThrow();
  });

  it('compares by secret name whatever the form', () => {
    expect(prefixCoversSecret('tray-import/', 'tray-import/master')).toBe(true);
    expect(prefixCoversSecret('tray-import/users/', 'tray-import/master')).toBe(false);
    expect(prefixCoversSecret('arn:aws:secretsmanager:us-east-1:123456789012:secret:a/', 'a/b')).toBe(true);
    expect(masterTokenCoverageProblem(['x/'], 'y/master')).toBeUndefined();
  });
});

describe('worker cold start', () => {
  const env = (plan: ImportPlan, extra: Record<string, string> = {}) => ({
    LEDGER_TABLE: 'ledger',
    QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/q',
    DLQ_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/dlq',
    MASTER_TOKEN_SECRET_ID: 'tray-auth-import/master-token',
    IMPORT_PLAN: JSON.stringify(plan),
    ...extra,
  });

  it('refuses a per-user prefix covering the master token secret', () => {
    const plan = parsePlan(withTemplate('tray-auth-import/{{sub}}'));
    expect(() => loadWorkerConfig(env(plan))).toThrow(/covers the master token's secret/);
    expect(() => loadWorkerConfig(env(parsePlan(withTemplate('tray-import/users/{{sub}}'))))).not.toThrow();
  });

  it('refuses a plain-http TRAY_GRAPHQL_URL other than loopback, naming the setting', () => {
    const plan = parsePlan(demoPlan());
    expect(() => loadWorkerConfig(env(plan, { TRAY_GRAPHQL_URL: 'http://tray.io/graphql' }))).toThrow(/TRAY_GRAPHQL_URL.*must use https/);
    expect(loadWorkerConfig(env(plan, { TRAY_GRAPHQL_URL: 'http://127.0.0.1:4000/graphql' })).TRAY_GRAPHQL_URL).toBe(
      'http://127.0.0.1:4000/graphql',
    );
    expect(trayUrlProblem('https://user:pw@tray.io/graphql', 'x')).toBeUndefined();
    expect(trayUrlProblem('http://user:pw@tray.io/graphql', 'x')).not.toContain('pw');
  });
});
