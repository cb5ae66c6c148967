import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFn } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { SECRET_CHANGE_DETAIL_TYPES, SECRET_CHANGE_EVENTS, SECRETS_EVENT_SOURCE } from '../../functions/lifecycle-events/secrets.js';
import { type ImportPlan, referencedSecrets } from '../../shared/plan.js';

/**
 * Changes to the secrets the plan reads → the lifecycle-events function → rotate messages
 * (functions/lifecycle-events/secrets.ts). Secrets Manager reports `PutSecretValue` and
 * `UpdateSecret` as CloudTrail management events and the end of an automatic rotation as
 * `RotationSucceeded`; EventBridge sees them when a trail logs the account's management events
 * in this region (as for the Cognito deletions). The rule matches only the plan's secrets, by name
 * or ARN prefix (callers may name a secret either way); the function checks the exact name.
 *
 * No secret grant: the function never reads a secret (the event names it; the worker reads the
 * value when it rotates). It gets the plan (IMPORT_PLAN) to know which slots read which secret.
 * Nothing when the plan reads no secret.
 */
export interface SecretChangeEventsProps {
  plan: ImportPlan;
  /** The lifecycle-events function (infra/constructs/lifecycle-events.ts `function`). */
  target: { fn: LambdaFn; role: IRole };
  /** Where an event EventBridge could not deliver is kept (the lifecycle-events DLQ). */
  deadLetterQueue?: IQueue | undefined;
}

export class SecretChangeEvents extends Construct {
  readonly rule: Rule | undefined;

  constructor(scope: Construct, id: string, props: SecretChangeEventsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const { ids, templatePrefixes } = referencedSecrets(props.plan);
    const names = [...ids, ...templatePrefixes].map((s) => {
      const at = s.indexOf(':secret:');
      return s.startsWith('arn:') && at >= 0 ? s.slice(at + ':secret:'.length) : s;
    });
    if (names.length === 0) return;
    const arnOf = (name: string) =>
      stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const matchers = names.flatMap((name) => [{ prefix: name }, { prefix: arnOf(name) }]);

    props.target.fn.addEnvironment('IMPORT_PLAN', JSON.stringify(props.plan));
    this.rule = new Rule(this, 'SecretChanged', {
      description: 'Changes to the secrets the import plan reads (CloudTrail management events) → credential rotation',
      eventPattern: {
        source: [SECRETS_EVENT_SOURCE],
        detailType: [...SECRET_CHANGE_DETAIL_TYPES],
        detail: {
          eventSource: ['secretsmanager.amazonaws.com'],
          eventName: [...SECRET_CHANGE_EVENTS],
          // A failed call changed nothing.
          errorCode: [{ exists: false }],
          $or: [{ requestParameters: { secretId: matchers } }, { additionalEventData: { SecretId: matchers } }],
        },
      },
      targets: [
        new LambdaFunction(props.target.fn, {
          ...(props.deadLetterQueue ? { deadLetterQueue: props.deadLetterQueue } : {}),
          retryAttempts: 8,
          maxEventAge: Duration.hours(24),
        }),
      ],
    });
  }
}
