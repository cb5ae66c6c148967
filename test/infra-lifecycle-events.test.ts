import { readFileSync } from 'node:fs';
import { App, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../infra/build.js';
import { REPO_ROOT, repoPath } from '../infra/paths.js';

/**
 * The lifecycle-events function in the stack: the Cognito-deletion rule (CloudTrail management
 * events of this pool), its DLQ, the function's on-failure destination, least-privilege grants,
 * and cdk-nag clean. Bundling is skipped as in test/infra.test.ts.
 */
delete process.env.CDK_DEFAULT_ACCOUNT;
delete process.env.CDK_DEFAULT_REGION;

const CDK_CONTEXT = JSON.parse(readFileSync(repoPath('cdk.json'), 'utf8')).context as Record<string, unknown>;
const EXAMPLE = JSON.parse(readFileSync(repoPath('config.example.json'), 'utf8')) as Record<string, unknown>;
const POOL_ID = 'eu-west-1_AbCdEf123';

function synth(overrides: Record<string, unknown> = {}) {
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  const built = buildApp(app, { config: { ...EXAMPLE, ...overrides }, configDir: REPO_ROOT });
  const { stack } = built;
  const id = (c: IConstruct) => stack.getLogicalId(c.node.defaultChild as CfnElement);
  return { ...built, template: Template.fromStack(stack), id };
}

/** Every Allow of a role's policies, as "action on resource" with references flattened. */
function allowed(template: Template, roleId: string): string[] {
  const pairs: string[] = [];
  for (const policy of Object.values(template.findResources('AWS::IAM::Policy'))) {
    const roles = policy.Properties.Roles as unknown[];
    if (!roles.some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleId }))) continue;
    for (const s of policy.Properties.PolicyDocument.Statement as Record<string, unknown>[]) {
      expect(s.Effect).toBe('Allow');
      for (const action of [s.Action].flat())
        for (const resource of [s.Resource].flat()) pairs.push(`${String(action)} on ${JSON.stringify(resource)}`);
    }
  }
  return pairs.sort();
}

describe('lifecycle events (Cognito deletions → offboarding)', () => {
  const built = synth({ userPool: { existingUserPoolId: POOL_ID } });
  const { template, stack, id } = built;
  const events = stack.lifecycleEvents;

  it('routes AdminDeleteUser of this pool and DeleteUser (CloudTrail) to the function, with a DLQ on the target', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.cognito-idp'],
        'detail-type': ['AWS API Call via CloudTrail'],
        detail: {
          eventSource: ['cognito-idp.amazonaws.com'],
          eventName: ['AdminDeleteUser', 'DeleteUser'],
          errorCode: [{ exists: false }],
          $or: [{ requestParameters: { userPoolId: [POOL_ID] } }, { eventName: ['DeleteUser'] }],
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [id(events.function.fn), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [id(events.deadLetterQueue), 'Arn'] } },
        }),
      ],
    });
    // Events the function threw on (after Lambda's retries) land in the same DLQ.
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: id(events.function.fn) },
      MaximumRetryAttempts: 2,
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Environment: { Variables: Match.objectLike({ USER_POOL_ID: POOL_ID }) },
      DeadLetterConfig: { TargetArn: { 'Fn::GetAtt': [id(events.deadLetterQueue), 'Arn'] } },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'TrayAuthImport-lifecycle-events-dlq',
      SqsManagedSseEnabled: true,
      RedriveAllowPolicy: { redrivePermission: 'allowAll' },
    });
  });

  it('gives the function exactly SendMessage on the import queue, Query on the ledger, and its own DLQ and logs', () => {
    const role = id(events.function.role);
    const pairs = allowed(template, role);
    expect(pairs).toEqual(
      [
        `dynamodb:Query on ${JSON.stringify({ 'Fn::GetAtt': [id(stack.table), 'Arn'] })}`,
        `logs:CreateLogStream on ${JSON.stringify({ 'Fn::GetAtt': [id(events.function.logGroup), 'Arn'] })}`,
        `logs:PutLogEvents on ${JSON.stringify({ 'Fn::GetAtt': [id(events.function.logGroup), 'Arn'] })}`,
        `sqs:SendMessage on ${JSON.stringify({ 'Fn::GetAtt': [id(stack.queues.queue), 'Arn'] })}`,
        // The on-failure destination (CDK's SqsDestination grant).
        ...pairs.filter((p) => p.includes(id(events.deadLetterQueue))),
      ].sort(),
    );
    for (const p of pairs.filter((p) => p.includes(id(events.deadLetterQueue))))
      expect(p).toMatch(/^sqs:(SendMessage|GetQueueAttributes|GetQueueUrl)/);
    const env = template.findResources('AWS::Lambda::Function')[id(events.function.fn)]!.Properties.Environment.Variables;
    expect(env).toMatchObject({ USER_POOL_ID: POOL_ID, LEDGER_TABLE: { Ref: id(stack.table) }, POWERTOOLS_SERVICE_NAME: 'TrayAuthImport' });
  });

  it('alarms on the DLQ and on OffboardUnresolved', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'OffboardUnresolved',
      Namespace: 'TrayAuthImport',
      Dimensions: Match.arrayWith([{ Name: 'component', Value: 'lifecycle-events' }]),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [id(events.deadLetterQueue), 'QueueName'] } }],
    });
  });

  it('passes cdk-nag (AwsSolutions) without any acknowledgement of its own, with a pool created by the stack too', () => {
    expect(built.nag.validateScope(built.app).violations).toEqual([]);
    for (const c of events.node.findAll()) expect(c.node.metadata.filter((m) => m.type.includes('acknowledge'))).toEqual([]);
    const created = synth();
    expect(created.nag.validateScope(created.app).violations).toEqual([]);
  });
});
