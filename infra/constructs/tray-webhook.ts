import { CfnOutput, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { type FunctionUrl, FunctionUrlAuthType } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENTRIES } from '../../functions/entries.js';
import { EXPIRY_METRIC, METRIC_COMPONENT, METRICS_NAMESPACE, type StackOutputKey } from '../../shared/names.js';
import type { ImportPlan } from '../../shared/plan.js';
import { nagResourceString, secretResources } from '../secret-grants.js';
import { BundledFunction } from './lambda-function.js';

/**
 * Tray's expired-auth notifications (issue 13, item 5): functions/tray-webhook behind a Lambda
 * function URL. Tray's Embedded settings take a bare URL ("Expired auth notification webhook"),
 * with neither IAM signing nor custom headers, so the URL's auth type is NONE and the function
 * checks a shared token carried in the URL's query (`?token=…`), generated here in Secrets
 * Manager. Least privilege: GetSecretValue on that token only; DescribeSecret (dates, never
 * values) on the plan's secrets; GetItem/UpdateItem on the ledger; SendMessage on the import queue.
 * An alarm on AuthExpiring tells the company that an auth it must renew is about to expire.
 */
export interface TrayWebhookProps {
  stackName: string;
  plan: ImportPlan;
  table: ITable;
  queue: IQueue;
  userPoolId: string;
  topic: ITopic;
  logRetention: RetentionDays;
  logKey?: IKey | undefined;
  vpc?: { vpcId: string; subnetIds: string[]; securityGroupIds: string[] } | undefined;
}

/** The CfnOutput id of the URL (shared/names.ts STACK_OUTPUT_KEYS). */
const URL_OUTPUT: StackOutputKey = 'TrayWebhookUrl';

export class TrayWebhook extends Construct {
  readonly function: BundledFunction;
  readonly url: FunctionUrl;
  readonly token: Secret;
  readonly alarm: Alarm;

  constructor(scope: Construct, id: string, props: TrayWebhookProps) {
    super(scope, id);
    const stack = Stack.of(this);

    this.token = new Secret(this, 'Token', {
      secretName: `${props.stackName}/tray-webhook-token`,
      description:
        "Shared token of Tray's expired-auth webhook: append ?token=<this value> to the TrayWebhookUrl output in Tray's settings",
      // URL-safe (no punctuation), long enough not to be guessed.
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
    });
    Validations.of(this.token).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        "The webhook token is pasted by hand into Tray's Embedded settings (the only place Tray keeps it): an automatic rotation would break " +
        'the webhook until someone pasted the new value. Rotate it by hand (docs/operators.md: put a new value, update Tray).',
    });

    this.function = new BundledFunction(this, 'Function', {
      entry: ENTRIES.trayWebhook,
      description: "Tray's expired-auth webhook: records the notification, re-imports a newer secret or alerts",
      timeout: Duration.seconds(10),
      memorySize: 256,
      logRetention: props.logRetention,
      logKey: props.logKey,
      vpc: props.vpc,
      // Exactly what functions/tray-webhook/settings.ts WebhookEnvSchema reads.
      environment: {
        LEDGER_TABLE: props.table.tableName,
        QUEUE_URL: props.queue.queueUrl,
        USER_POOL_ID: props.userPoolId,
        WEBHOOK_TOKEN_SECRET_ID: this.token.secretArn,
        IMPORT_PLAN: JSON.stringify(props.plan),
        // The `service` dimension of its metrics: the stack's name, as for the worker.
        POWERTOOLS_SERVICE_NAME: props.stackName,
      },
    });
    this.url = this.function.fn.addFunctionUrl({ authType: FunctionUrlAuthType.NONE });

    const role = this.function.role;
    role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'ReadWebhookToken', actions: ['secretsmanager:GetSecretValue'], resources: [this.token.secretArn] }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'Ledger', actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], resources: [props.table.tableArn] }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'EnqueueRotation', actions: ['sqs:SendMessage'], resources: [props.queue.queueArn] }),
    );
    // When the plan's secrets changed, never their values; the master token's secret is not among them.
    const secrets = secretResources(this, props.plan, {});
    if (secrets.exact.length > 0) {
      role.addToPrincipalPolicy(
        new PolicyStatement({ sid: 'DescribePlanSecrets', actions: ['secretsmanager:DescribeSecret'], resources: secrets.exact }),
      );
    }
    if (secrets.prefixes.length > 0) {
      role.addToPrincipalPolicy(
        new PolicyStatement({ sid: 'DescribePerUserSecrets', actions: ['secretsmanager:DescribeSecret'], resources: secrets.prefixes }),
      );
      for (const prefix of secrets.prefixes) {
        Validations.of(role).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${nagResourceString(this, prefix)}]`,
          reason:
            "Per-user credential secrets named by the import plan's secretIdTemplate: the webhook asks when the secret of the user Tray " +
            "names last changed, a name only known at run time. DescribeSecret only (no value), under the template's fixed prefix.",
        });
      }
    }

    this.alarm = new Alarm(this, 'AuthExpiring', {
      alarmName: `${props.stackName}-AuthExpiring`,
      alarmDescription:
        "Tray says a user's auth expires within 7-10 days and its credentials have no newer value to import: the company must renew it " +
        '(docs/operators.md, "Expired credentials: Tray\'s webhook").',
      metric: new Metric({
        namespace: METRICS_NAMESPACE,
        metricName: EXPIRY_METRIC.authExpiring,
        dimensionsMap: { service: props.stackName, component: METRIC_COMPONENT.webhook },
        period: Duration.minutes(5),
        statistic: 'Sum',
      }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.alarm.addAlarmAction(new SnsAction(props.topic));

    // At the stack's top level, so that its id is exactly the one the CLI and the docs name.
    new CfnOutput(stack, URL_OUTPUT, {
      value: this.url.url,
      description: `Paste into Tray's Embedded settings ("Expired auth notification webhook") as <this URL>?token=<value of secret ${props.stackName}/tray-webhook-token>`,
    });
  }
}
