import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Code, Function as LambdaFn, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { describe, expect, it } from 'vitest';
import { SecretChangeEvents } from '../infra/constructs/secret-change-events.js';
import { DEMO_CREDENTIAL_SECRET, demoPlan } from '../local/demo.js';
import { parsePlan } from '../shared/plan.js';

/** The rule for the plan's secrets: the right events, only the plan's secrets, the lifecycle-events function as target, no secret grant. */
function synth(plan = demoPlan()) {
  const stack = new Stack(new App(), 'T', { env: { account: '123456789012', region: 'eu-west-1' } });
  const role = new Role(stack, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
  const fn = new LambdaFn(stack, 'Fn', { runtime: Runtime.NODEJS_20_X, handler: 'index.handler', code: Code.fromInline('x'), role });
  const deadLetterQueue = new Queue(stack, 'Dlq');
  const construct = new SecretChangeEvents(stack, 'SecretChanges', { plan, target: { fn, role }, deadLetterQueue });
  return { template: Template.fromStack(stack), construct };
}

describe('SecretChangeEvents', () => {
  it("matches PutSecretValue, UpdateSecret and RotationSucceeded of the plan's secrets, by name or ARN", () => {
    const { template } = synth();
    // The ARN carries the partition as a token: matched as any value here, its text below.
    const matchers = [{ prefix: DEMO_CREDENTIAL_SECRET }, { prefix: Match.anyValue() }];
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.secretsmanager'],
        'detail-type': ['AWS API Call via CloudTrail', 'AWS Service Event via CloudTrail'],
        detail: {
          eventSource: ['secretsmanager.amazonaws.com'],
          eventName: ['PutSecretValue', 'UpdateSecret', 'RotationSucceeded'],
          errorCode: [{ exists: false }],
          $or: [{ requestParameters: { secretId: matchers } }, { additionalEventData: { SecretId: matchers } }],
        },
      },
      Targets: [
        Match.objectLike({ DeadLetterConfig: Match.anyValue(), RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 86400 } }),
      ],
    });
    const rule = Object.values(template.findResources('AWS::Events::Rule'))[0] as { Properties: { EventPattern: unknown } };
    expect(JSON.stringify(rule.Properties.EventPattern)).toContain(
      `:secretsmanager:eu-west-1:123456789012:secret:${DEMO_CREDENTIAL_SECRET}`,
    );
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { IMPORT_PLAN: Match.stringLikeRegexp('acme-crm') } },
    });
  });

  it('covers per-user secrets by their prefix', () => {
    const base = demoPlan();
    const plan = parsePlan({
      ...base,
      auths: [{ ...base.auths[0]!, data: { api_key: { secret: { secretIdTemplate: 'tray-import/users/{{sub}}', field: 'apiKey' } } } }],
    });
    const { template } = synth(plan);
    const rule = Object.values(template.findResources('AWS::Events::Rule'))[0] as { Properties: { EventPattern: unknown } };
    expect(JSON.stringify(rule.Properties.EventPattern)).toContain('{"prefix":"tray-import/users/"}');
  });

  it('grants the function nothing on secrets, and adds no rule when the plan reads none', () => {
    const { template } = synth();
    expect(JSON.stringify(template.findResources('AWS::IAM::Policy'))).not.toContain('secretsmanager:');
    const base = demoPlan();
    const noSecrets = parsePlan({ ...base, auths: [{ ...base.auths[0]!, data: { api_key: { literal: 'not-a-secret' } } }] });
    const none = synth(noSecrets);
    expect(none.construct.rule).toBeUndefined();
    none.template.resourceCountIs('AWS::Events::Rule', 0);
  });
});
