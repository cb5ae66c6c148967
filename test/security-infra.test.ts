import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../infra/build.js';
import { CREDENTIAL_ATTRIBUTE_WARNING_ID } from '../infra/constructs/attribute-trust.js';
import { WORKER_METRIC_DIMENSIONS } from '../infra/constructs/import-guards.js';
import { REPO_ROOT, repoPath } from '../infra/paths.js';
import { DEAD_LETTER_FAILED_METRIC } from '../shared/dead-letter.js';

/** Issue #11, items 4–6 on the infra side: warnings, guard alarms, a DLQ that outlives the stack. */
delete process.env.CDK_DEFAULT_ACCOUNT;
delete process.env.CDK_DEFAULT_REGION;

const CDK_CONTEXT = JSON.parse(readFileSync(repoPath('cdk.json'), 'utf8')).context as Record<string, unknown>;
const EXAMPLE = JSON.parse(readFileSync(repoPath('config.example.json'), 'utf8')) as Record<string, unknown>;
const DEMO_PLAN_RAW = JSON.parse(readFileSync(repoPath('local/demo-plan.json'), 'utf8')) as { auths: Record<string, unknown>[] } & Record<
  string,
  unknown
>;

const build = (overrides: Record<string, unknown> = {}) =>
  buildApp(new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } }), {
    config: { ...EXAMPLE, ...overrides },
    configDir: REPO_ROOT,
  }).stack;

const warnings = (stack: ReturnType<typeof build>) =>
  Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp(CREDENTIAL_ATTRIBUTE_WARNING_ID));

/** One synth of the example and one of a Secrets-Manager-only plan serve all the checks below. */
const example = build();
const exampleTemplate = Template.fromStack(example);
const secretsOnlyPlan = {
  ...DEMO_PLAN_RAW,
  auths: [
    {
      ...DEMO_PLAN_RAW.auths[0],
      data: {
        api_key: { secret: { secretId: 'tray-auth-import/demo/acme-crm', field: 'apiKey' } },
        account_id: { secret: { secretIdTemplate: 'tray-import/users/{{sub}}', field: 'accountId' } },
      },
    },
  ],
};

describe('credential fields from user attributes', () => {
  it('the example does not let users sign themselves up while its plan reads a credential from a custom attribute', () => {
    const usesAttribute = DEMO_PLAN_RAW.auths.some((a) =>
      Object.values(a.data as Record<string, { attribute?: string }>).some((s) => s.attribute?.startsWith('custom:')),
    );
    const selfSignUp = (EXAMPLE.userPool as { create?: { selfSignUpEnabled?: boolean } }).create?.selfSignUpEnabled ?? true;
    expect(usesAttribute && selfSignUp).toBe(false);
    exampleTemplate.hasResourceProperties('AWS::Cognito::UserPool', { AdminCreateUserConfig: { AllowAdminCreateUserOnly: true } });
  });

  it('warns at synth when a plan reads a credential field from a custom attribute of a pool the stack creates with self sign-up', () => {
    const selfSignUp = build({ userPool: { create: { selfSignUpEnabled: true, customAttributes: ['tenant_id'] } } });
    const found = warnings(selfSignUp);
    expect(found).toHaveLength(1);
    expect(JSON.stringify(found[0]!.entry.data)).toMatch(
      /auths\[0\]\.data\.account_id from the user attribute \\"custom:tenant_id\\".*anyone can choose its value when signing up.*writeAttributes/,
    );
    // Without self sign-up: a reminder (info), since users may still update their own attributes.
    expect(warnings(example)).toEqual([]);
    expect(
      Annotations.fromStack(example).findInfo(
        '*',
        Match.stringLikeRegexp('account_id from the user attribute "custom:tenant_id".*writeAttributes'),
      ),
    ).toHaveLength(1);
  });

  it('does not warn when credentials come from Secrets Manager only, nor for a pool it does not create', () => {
    expect(warnings(build({ planFile: undefined, plan: secretsOnlyPlan, userPool: { create: {} } }))).toEqual([]);
    expect(warnings(build({ userPool: { existingUserPoolId: 'eu-west-1_AbCdEf123' } }))).toEqual([]);
  });
});

describe('guards', () => {
  it('alarms when the worker cannot dead-letter (DeadLetterFailed), on the alarm topic', () => {
    const alarms = Object.values(exampleTemplate.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => a.Properties as Record<string, unknown>,
    );
    const alarm = alarms.find((a) => a.MetricName === DEAD_LETTER_FAILED_METRIC);
    expect(alarm).toMatchObject({
      Namespace: 'TrayAuthImport',
      Statistic: 'Sum',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      Dimensions: expect.arrayContaining(Object.entries(WORKER_METRIC_DIMENSIONS).map(([Name, Value]) => ({ Name, Value }))),
    });
    expect(alarm?.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^AlarmsTopic/) }]);
  });

  it('passes maxImportsPerHour to the worker as its hard ceiling, and alarms when an hour reaches it, only when it is set', () => {
    const volume = (template: Template) =>
      Object.values(template.findResources('AWS::CloudWatch::Alarm'))
        .map((a) => a.Properties as Record<string, unknown>)
        .filter((a) => a.MetricName === 'Imported');
    expect(volume(exampleTemplate)).toEqual([
      expect.objectContaining({
        Period: 3600,
        Statistic: 'Sum',
        Threshold: (EXAMPLE.maxImportsPerHour as number) - 1,
        ComparisonOperator: 'GreaterThanThreshold',
      }),
    ]);
    const workerEnv = Object.values(exampleTemplate.findResources('AWS::Lambda::Function')).map(
      (f) => (f as { Properties: { Environment?: { Variables?: Record<string, unknown> } } }).Properties.Environment?.Variables ?? {},
    );
    expect(workerEnv.some((v) => v.MAX_IMPORTS_PER_HOUR === String(EXAMPLE.maxImportsPerHour))).toBe(true);
    expect(volume(Template.fromStack(build({ maxImportsPerHour: undefined })))).toEqual([]);
    expect(() => build({ maxImportsPerHour: 0 })).toThrow(/maxImportsPerHour/);
  });

  it('keeps the dead-letter queue when the stack is deleted', () => {
    const queues = exampleTemplate.findResources('AWS::SQS::Queue');
    // The DLQ is the queue that lets a source queue (the import queue) redrive into it.
    const dlq = Object.values(queues).find(
      (q) => (q.Properties as { RedriveAllowPolicy?: { redrivePermission?: string } }).RedriveAllowPolicy?.redrivePermission === 'byQueue',
    );
    expect(dlq).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
  });
});

describe('scheduled reconcile', () => {
  it('is off by default: no schedule rule, no extra function', () => {
    const rules = Object.values(exampleTemplate.findResources('AWS::Events::Rule'));
    expect(rules.filter((r) => r.Properties.ScheduleExpression !== undefined)).toEqual([]);
    // The worker, the trigger, the lifecycle-events function and Tray's webhook.
    exampleTemplate.resourceCountIs('AWS::Lambda::Function', 4);
  });

  it('with reconcileSchedule: an EventBridge rule runs the reconcile function, which may only list the pool, query the ledger and enqueue', () => {
    const stack = build({ reconcileSchedule: 'rate(1 hour)' });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
    template.resourceCountIs('AWS::Lambda::Function', 5);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Timeout: 900,
      Environment: {
        Variables: Match.objectLike({
          MESSAGE_ATTRIBUTES: 'custom:tenant_id,email,name',
          USER_POOL_ID: Match.anyValue(),
          QUEUE_URL: Match.anyValue(),
          LEDGER_TABLE: Match.anyValue(),
        }),
      },
    });
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .flatMap(
        (p) =>
          (p.Properties as { PolicyDocument: { Statement: { Sid?: string; Action: unknown; Resource: unknown }[] } }).PolicyDocument
            .Statement,
      )
      .filter((st) => ['ListPoolUsers', 'ReadLedgerStatuses', 'EnqueueLostUsers'].includes(st.Sid ?? ''));
    expect(statements.map((st) => [st.Sid, st.Action])).toEqual([
      ['ListPoolUsers', 'cognito-idp:ListUsers'],
      ['ReadLedgerStatuses', 'dynamodb:Query'],
      ['EnqueueLostUsers', 'sqs:SendMessage'],
    ]);
    // Exact resources: no wildcard anywhere in these grants.
    expect(JSON.stringify(statements.map((st) => st.Resource))).not.toContain('*');
    expect(() => build({ reconcileSchedule: 'every hour' })).toThrow(/reconcileSchedule.*EventBridge schedule expression/);
  });

  it('passes cdk-nag with no new acknowledgement, for a created and an existing pool', () => {
    for (const userPool of [EXAMPLE.userPool, { existingUserPoolId: 'eu-west-1_AbCdEf123' }]) {
      const built = buildApp(new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } }), {
        config: { ...EXAMPLE, userPool, reconcileSchedule: 'cron(0 3 * * ? *)' },
        configDir: REPO_ROOT,
      });
      expect(built.nag.validateScope(built.app).violations.map((v) => v.ruleName)).toEqual([]);
    }
  });
});
