import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Token, Validations } from 'aws-cdk-lib';
import { AccountRecovery, FeaturePlan, Mfa, StandardThreatProtectionMode, StringAttribute, UserPool } from 'aws-cdk-lib/aws-cognito';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { Construct } from 'constructs';
import { ENTRIES } from '../functions/entries.js';
import { LEDGER_KEY } from '../shared/ledger.js';
import type { InfoOutputKey, StackOutputKey } from '../shared/names.js';
import { type ImportPlan, requiredAttributes } from '../shared/plan.js';
import { CLI_RATE_PER_SECOND, defaultBurst } from '../shared/tray/pacer.js';
import { type DeployConfig, DeployConfigError, fullBatchSeconds, trayCallsPerUser, userPoolRegion, workerRatePerSecond } from './config.js';
import { ImportAlarms, limitGrantsToAwsServices } from './constructs/alarms.js';
import { warnOnCredentialAttributes } from './constructs/attribute-trust.js';
import { ImportGuards } from './constructs/import-guards.js';
import { ImportQueues } from './constructs/import-queues.js';
import { BundledFunction } from './constructs/lambda-function.js';
import { LifecycleEvents } from './constructs/lifecycle-events.js';
import { ScheduledReconcile } from './constructs/scheduled-reconcile.js';
import { SecretChangeEvents } from './constructs/secret-change-events.js';
import { TrayWebhook } from './constructs/tray-webhook.js';
import { nagResourceString, secretResources } from './secret-grants.js';

/** Kept for infra/build.ts until it imports shared/names.ts itself. */
/** Users one invocation imports at once at most (worker env MAX_USERS_IN_FLIGHT); its pacer decides below it. */
export const WORKER_MAX_USERS_IN_FLIGHT = 64;

export interface TrayAuthImportStackProps extends StackProps {
  config: DeployConfig;
  /** The validated import plan (config.planFile or config.plan). */
  plan: ImportPlan;
}

/**
 * The whole pipeline: Cognito post-confirmation trigger → SQS queue (+ DLQ) → import worker →
 * Tray, with the DynamoDB ledger, and alarms. With `userPool.existingUserPoolId` the pool is not
 * part of the stack (CDK cannot add a trigger to an imported pool): the operators' CLI
 * `attach-trigger` sets it, and this stack only grants that pool the right to invoke the trigger.
 */
export class TrayAuthImportStack extends Stack {
  readonly queues: ImportQueues;
  readonly table: Table;
  readonly worker: BundledFunction;
  readonly postConfirmation: BundledFunction;
  readonly alarms: ImportAlarms;
  readonly userPool?: UserPool;
  readonly lifecycleEvents: LifecycleEvents;

  constructor(scope: Construct, id: string, props: TrayAuthImportStackProps) {
    super(scope, id, props);
    const { config, plan } = props;

    const poolRegion = config.userPool.existingUserPoolId ? userPoolRegion(config.userPool.existingUserPoolId) : undefined;
    if (poolRegion && !Token.isUnresolved(this.region) && this.region !== poolRegion) {
      throw new DeployConfigError(
        `userPool.existingUserPoolId is in ${poolRegion} but the stack deploys to ${this.region}; Cognito triggers must be in the pool's region`,
      );
    }

    const workerTimeout = Duration.seconds(config.workerTimeoutSeconds);
    // Tray limits requests per second per partner account. Each worker invocation paces itself to
    // an equal share of the budget left after the CLI's reserve (a token bucket in the worker), so
    // maxConcurrency invocations at full pace stay within trayBudgetPerSecond whatever Tray's latency.
    const workerRate = workerRatePerSecond(config);

    // ---- Queues -------------------------------------------------------------------------------
    this.queues = new ImportQueues(this, 'Queues', {
      queueName: `${config.stackName}-imports`,
      deadLetterQueueName: `${config.stackName}-imports-dlq`,
      maxReceiveCount: config.maxReceiveCount,
      workerTimeout,
    });
    const { queue, deadLetterQueue } = this.queues;

    // ---- Ledger -------------------------------------------------------------------------------
    this.table = new Table(this, 'Ledger', {
      partitionKey: { name: LEDGER_KEY.partitionKey, type: AttributeType.STRING },
      sortKey: { name: LEDGER_KEY.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      // The only record of which Tray ids belong to which user: never deleted with the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ---- Worker -------------------------------------------------------------------------------
    const masterTokenSecretId = config.masterTokenSecret.arn ?? config.masterTokenSecret.name!;
    const logRetention = config.logRetentionDays;
    const logKey = config.encryptLogs ? this.logsKey() : undefined;
    const network = { logKey, vpc: config.vpc };
    this.worker = new BundledFunction(this, 'Worker', {
      entry: ENTRIES.importWorker,
      description: 'Imports queued Cognito users into Tray Embedded',
      timeout: workerTimeout,
      memorySize: config.workerMemoryMb,
      logRetention,
      ...network,
      // Exactly what shared/config.ts WorkerEnvSchema reads.
      environment: {
        LEDGER_TABLE: this.table.tableName,
        QUEUE_URL: queue.queueUrl,
        DLQ_URL: deadLetterQueue.queueUrl,
        MASTER_TOKEN_SECRET_ID: masterTokenSecretId,
        MASTER_TOKEN_CACHE_MS: String(config.masterTokenCacheMs),
        IMPORT_PLAN: JSON.stringify(plan),
        // Must equal the redrive policy's maxReceiveCount: on that delivery the worker dead-letters with a reason.
        MAX_RECEIVE_COUNT: String(config.maxReceiveCount),
        // The hard ceiling behind the ImportVolume alarm: beyond it, users wait in the queue.
        ...(config.maxImportsPerHour === undefined ? {} : { MAX_IMPORTS_PER_HOUR: String(config.maxImportsPerHour) }),
        TRAY_RATE_PER_SECOND: String(workerRate),
        // Written out so that the template shows every setting the worker runs with.
        TRAY_BURST: String(defaultBurst(workerRate)),
        MAX_USERS_IN_FLIGHT: String(WORKER_MAX_USERS_IN_FLIGHT),
        TRAY_TIMEOUT_MS: String(config.trayTimeoutMs),
        RETRY_BASE_SECONDS: String(config.retryBaseSeconds),
        RETRY_MAX_SECONDS: String(config.retryMaxSeconds),
        // The `service` dimension of the worker's metrics (and the service of its logs): the stack's
        // name, so that two stacks in one account and region never share a metric.
        POWERTOOLS_SERVICE_NAME: config.stackName,
        ...(config.trayGraphqlUrl ? { TRAY_GRAPHQL_URL: config.trayGraphqlUrl } : {}),
      },
    });

    this.worker.fn.addEventSource(
      new SqsEventSource(queue, {
        batchSize: config.batchSize,
        maxBatchingWindow: config.maxBatchingWindowSeconds > 0 ? Duration.seconds(config.maxBatchingWindowSeconds) : undefined,
        maxConcurrency: config.maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
    this.templateOptions.metadata = {
      ...this.templateOptions.metadata,
      TrayBudget: {
        budgetPerSecond: config.trayBudgetPerSecond,
        cliReservePerSecond: CLI_RATE_PER_SECOND,
        maxConcurrency: config.maxConcurrency,
        workerRatePerSecond: workerRate,
        trayLimitPerSecond: config.trayRateLimitPerSecond,
        callsPerUser: trayCallsPerUser(plan),
        fullBatchSeconds: Math.ceil(fullBatchSeconds(config, plan)),
      },
    };

    const workerRole = this.worker.role;
    // The event source added receive/delete/change-visibility/get-attributes on the queue; the
    // worker itself also changes visibility (retry back-off) on the queue and dead-letters with reasons.
    workerRole.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'DeadLetterWithReason', actions: ['sqs:SendMessage'], resources: [deadLetterQueue.queueArn] }),
    );
    // The worker reads and updates one user's item at a time; only the operators' CLI queries a pool.
    workerRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'Ledger',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [this.table.tableArn],
      }),
    );
    const secrets = secretResources(this, plan, config.masterTokenSecret);
    workerRole.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'ReadMasterTokenAndPlanSecrets', actions: ['secretsmanager:GetSecretValue'], resources: secrets.exact }),
    );
    if (secrets.prefixes.length > 0) {
      workerRole.addToPrincipalPolicy(
        new PolicyStatement({ sid: 'ReadPerUserSecrets', actions: ['secretsmanager:GetSecretValue'], resources: secrets.prefixes }),
      );
      for (const prefix of secrets.prefixes) {
        Validations.of(workerRole).acknowledge({
          id: `AwsSolutions-IAM5[Resource::${nagResourceString(this, prefix)}]`,
          reason:
            "Per-user credential secrets named by the import plan's secretIdTemplate: the worker reads the secret of the user it imports, " +
            "whose name is only known at run time. The grant is limited to GetSecretValue under the template's fixed prefix.",
        });
      }
    }

    // ---- Post-confirmation trigger ----------------------------------------------------------
    this.postConfirmation = new BundledFunction(this, 'PostConfirmation', {
      entry: ENTRIES.postConfirmation,
      description: 'Cognito post-confirmation trigger: enqueues the new user for import',
      // Cognito waits about 5 s for a trigger; the send itself is bounded by ENQUEUE_TIMEOUT_MS.
      timeout: Duration.seconds(5),
      memorySize: 256,
      logRetention,
      ...network,
      environment: {
        QUEUE_URL: queue.queueUrl,
        MESSAGE_ATTRIBUTES: requiredAttributes(plan).join(','),
        ENQUEUE_TIMEOUT_MS: String(config.enqueueTimeoutMs),
      },
    });
    this.postConfirmation.role.addToPrincipalPolicy(
      new PolicyStatement({ sid: 'EnqueueSignUp', actions: ['sqs:SendMessage'], resources: [queue.queueArn] }),
    );

    // ---- User pool ----------------------------------------------------------------------------
    let userPoolId: string;
    const create = config.userPool.create;
    if (create) {
      const pool = new UserPool(this, 'UserPool', {
        userPoolName: `${config.stackName}-users`,
        selfSignUpEnabled: create.selfSignUpEnabled,
        signInAliases: { email: true },
        autoVerify: { email: true },
        standardAttributes: { email: { required: true, mutable: true } },
        customAttributes: Object.fromEntries(create.customAttributes.map((name) => [name, new StringAttribute({ mutable: true })])),
        passwordPolicy: {
          minLength: 12,
          requireLowercase: true,
          requireUppercase: true,
          requireDigits: true,
          requireSymbols: true,
          tempPasswordValidity: Duration.days(3),
        },
        mfa: { OFF: Mfa.OFF, OPTIONAL: Mfa.OPTIONAL, REQUIRED: Mfa.REQUIRED }[create.mfa],
        ...(create.mfa === 'OFF' ? {} : { mfaSecondFactor: { otp: true, sms: false } }),
        accountRecovery: AccountRecovery.EMAIL_ONLY,
        featurePlan: create.featurePlan === 'PLUS' ? FeaturePlan.PLUS : FeaturePlan.ESSENTIALS,
        ...(create.featurePlan === 'PLUS' ? { standardThreatProtectionMode: StandardThreatProtectionMode.FULL_FUNCTION } : {}),
        deletionProtection: true,
        removalPolicy: RemovalPolicy.RETAIN,
        // Adds the trigger and the Lambda permission for cognito-idp scoped to this pool's ARN.
        lambdaTriggers: { postConfirmation: this.postConfirmation.fn },
      });
      this.userPool = pool;
      warnOnCredentialAttributes(pool, plan, { selfSignUpEnabled: create.selfSignUpEnabled });
      userPoolId = pool.userPoolId;
      if (create.mfa !== 'REQUIRED') {
        Validations.of(pool).acknowledge({
          id: 'AwsSolutions-COG2',
          reason:
            create.mfa === 'OPTIONAL'
              ? 'MFA is offered (TOTP) and each user can enrol; making it mandatory is the product owner\'s sign-up decision, taken in the deploy config (userPool.create.mfa = "REQUIRED").'
              : 'MFA is off by an explicit deploy-config decision (userPool.create.mfa = "OFF") of the pool owner; the pool is for the product\'s own sign-up flow.',
        });
      }
      if (create.featurePlan !== 'PLUS') {
        Validations.of(pool).acknowledge({
          id: 'AwsSolutions-COG8',
          reason:
            'The Plus feature plan (threat protection) is billed per monthly active user; the pool owner opts in with userPool.create.featurePlan = "PLUS". ' +
            'Passwords are still held to a 12-character, four-class policy.',
        });
      }
    } else {
      userPoolId = config.userPool.existingUserPoolId as string;
      // The operators' CLI `attach-trigger` sets the trigger on the existing pool; this lets that
      // pool (and only it) invoke the function.
      this.postConfirmation.fn.addPermission('InvokeFromExistingUserPool', {
        principal: new ServicePrincipal('cognito-idp.amazonaws.com'),
        action: 'lambda:InvokeFunction',
        // The pool's own region (encoded in its id): the permission names exactly that pool.
        sourceArn: this.formatArn({
          service: 'cognito-idp',
          region: poolRegion,
          resource: 'userpool',
          resourceName: userPoolId,
          arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
        }),
        sourceAccount: this.account,
      });
    }

    // ---- Alarms ---------------------------------------------------------------------------------
    this.alarms = new ImportAlarms(this, 'Alarms', {
      stackName: config.stackName,
      postConfirmationLogs: this.postConfirmation.logGroup,
      queue,
      deadLetterQueue,
      worker: this.worker.fn,
      postConfirmation: this.postConfirmation.fn,
      oldestMessageAlarmAge: Duration.seconds(config.oldestMessageAlarmSeconds),
      alarmEmail: config.alarmEmail,
    });
    new ImportGuards(this, 'Guards', {
      stackName: config.stackName,
      topic: this.alarms.topic,
      deadLetterQueue,
      maxImportsPerHour: config.maxImportsPerHour,
    });
    this.lifecycleEvents = new LifecycleEvents(this, 'LifecycleEvents', {
      stackName: config.stackName,
      userPoolId,
      queue,
      table: this.table,
      logRetention,
      ...network,
      topic: this.alarms.topic,
    });
    // Secret changes go to the same function: it maps a secret to the users whose credentials read it.
    new SecretChangeEvents(this, 'SecretChangeEvents', {
      plan,
      target: this.lifecycleEvents.function,
      deadLetterQueue: this.lifecycleEvents.deadLetterQueue,
    });
    if (config.reconcileSchedule) {
      new ScheduledReconcile(this, 'ScheduledReconcile', {
        schedule: config.reconcileSchedule,
        userPoolId,
        userPoolRegion: poolRegion,
        queue,
        table: this.table,
        messageAttributes: requiredAttributes(plan).join(','),
        logRetention,
        topic: this.alarms.topic,
      });
    }

    if (config.trayWebhook)
      new TrayWebhook(this, 'TrayWebhook', {
        stackName: config.stackName,
        plan,
        table: this.table,
        queue,
        userPoolId,
        topic: this.alarms.topic,
        logRetention,
        ...network,
      });

    // ---- Outputs (ids in shared/names.ts, read by the operators' CLI: do not rename) -----------
    const output = (id: StackOutputKey | InfoOutputKey, value: string, description: string) =>
      new CfnOutput(this, id, { value, description });
    output('QueueUrl', queue.queueUrl, 'Import queue URL');
    output('QueueArn', queue.queueArn, 'Import queue ARN');
    output('DeadLetterQueueUrl', deadLetterQueue.queueUrl, 'Dead-letter queue URL');
    output('DeadLetterQueueArn', deadLetterQueue.queueArn, 'Dead-letter queue ARN (source of a redrive)');
    output('LedgerTableName', this.table.tableName, 'Ledger table (userPoolId, sub)');
    output('WorkerFunctionName', this.worker.fn.functionName, 'Import worker function');
    output('PostConfirmationFunctionName', this.postConfirmation.fn.functionName, 'Post-confirmation trigger function');
    output('PostConfirmationFunctionArn', this.postConfirmation.fn.functionArn, 'Post-confirmation trigger ARN (for attach-trigger)');
    output('AlarmTopicArn', this.alarms.topic.topicArn, 'SNS topic the alarms notify');
    output('UserPoolId', userPoolId, create ? 'User pool created by this stack' : 'Existing user pool (attach the trigger with the CLI)');
    if (logKey) output('LogsKeyArn', logKey.keyArn, "KMS key encrypting the functions' log groups (retained: the retained logs need it)");
    output('MasterTokenSecretId', masterTokenSecretId, 'Secret holding the Tray master token (put the value after deploy)');
    // Read by `backfill` to pace its enqueueing to what the fleet drains.
    output('TrayBudgetPerSecond', String(config.trayBudgetPerSecond), 'Tray requests/s this deployment may use (workers + CLI reserve)');
    output('TrayCallsPerUser', String(trayCallsPerUser(plan)), "Tray calls one fresh user costs (4 + the plan's auths)");
    output(
      'DashboardName',
      this.alarms.dashboard.dashboardName,
      'CloudWatch dashboard: imports, retries, dead letters, queue age, worker duration',
    );
    if (!create) {
      // The trigger was set outside CloudFormation (attach-trigger): `cdk destroy` deletes the
      // function but cannot unset the pool's trigger, and every sign-up would then fail. Detach first.
      output(
        'DetachTriggerCommand',
        `npm run cli -- detach-trigger --user-pool-id ${userPoolId} --stack-name ${config.stackName} --region ${poolRegion ?? this.region}`,
        'Run BEFORE `cdk destroy`: an existing pool would keep a trigger pointing at the deleted function (sign-ups would fail)',
      );
    }
  }

  /**
   * config `encryptLogs`: a customer managed key for both log groups. CloudWatch Logs may use it
   * only for this account's log groups in this region; it is retained with them, since retained
   * logs cannot be read without it.
   */
  private logsKey(): Key {
    const key = new Key(this, 'LogsKey', {
      description: "Encrypts the tray-auth-import functions' log groups",
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchLogsOfThisAccount',
        principals: [new ServicePrincipal(`logs.${this.region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': this.formatArn({
              service: 'logs',
              resource: 'log-group',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    limitGrantsToAwsServices(key);
    return key;
  }
}
