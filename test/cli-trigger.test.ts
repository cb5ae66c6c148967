import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  CognitoIdentityProviderClient,
  DescribeUserPoolCommand,
  UpdateUserPoolCommand,
  type UpdateUserPoolCommandInput,
  type UserPoolType,
} from '@aws-sdk/client-cognito-identity-provider';
import { AddPermissionCommand, LambdaClient, RemovePermissionCommand } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { READ_ONLY_POOL_FIELDS, runAttachTrigger, runDetachTrigger, statementId, type TriggerResult } from '../cli/commands/trigger.js';
import { main } from '../cli/main.js';
import { bufferIo } from '../cli/toolkit/output.js';

const POOL_ID = 'eu-west-1_ExistingPool';
const POOL_ARN = `arn:aws:cognito-idp:eu-west-1:123456789012:userpool/${POOL_ID}`;
const FUNCTION_ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:TrayAuthImport-PostConfirmation';
const OTHER_ARN = 'arn:aws:lambda:eu-west-1:123456789012:function:SomeoneElsesTrigger';

/** A pool with many settings, as DescribeUserPool returns it: everything must survive the update. */
function describedPool(lambdaConfig?: UserPoolType['LambdaConfig']): UserPoolType {
  return {
    Id: POOL_ID,
    Name: 'customers',
    Arn: POOL_ARN,
    Status: 'Enabled',
    CreationDate: new Date('2021-03-04T05:06:07Z'),
    LastModifiedDate: new Date('2025-01-02T03:04:05Z'),
    EstimatedNumberOfUsers: 1234,
    Domain: 'customers-auth',
    CustomDomain: 'auth.example.com',
    EmailConfigurationFailure: 'none',
    SmsConfigurationFailure: 'none',
    SchemaAttributes: [{ Name: 'email', AttributeDataType: 'String', Mutable: true, Required: true }],
    Policies: {
      PasswordPolicy: {
        MinimumLength: 12,
        RequireUppercase: true,
        RequireLowercase: true,
        RequireNumbers: true,
        RequireSymbols: false,
        TemporaryPasswordValidityDays: 3,
      },
    },
    DeletionProtection: 'ACTIVE',
    LambdaConfig: lambdaConfig,
    AutoVerifiedAttributes: ['email'],
    UsernameAttributes: ['email'],
    VerificationMessageTemplate: { DefaultEmailOption: 'CONFIRM_WITH_CODE', EmailMessage: 'Your code is {####}', EmailSubject: 'Verify' },
    UserAttributeUpdateSettings: { AttributesRequireVerificationBeforeUpdate: ['email'] },
    MfaConfiguration: 'OPTIONAL',
    DeviceConfiguration: { ChallengeRequiredOnNewDevice: true, DeviceOnlyRememberedOnUserPrompt: true },
    EmailConfiguration: {
      EmailSendingAccount: 'DEVELOPER',
      SourceArn: 'arn:aws:ses:eu-west-1:123456789012:identity/example.com',
      From: 'no-reply@example.com',
    },
    SmsConfiguration: { SnsCallerArn: 'arn:aws:iam::123456789012:role/sms', ExternalId: 'ext', SnsRegion: 'eu-west-1' },
    UserPoolTags: { team: 'identity', env: 'prod' },
    AdminCreateUserConfig: { AllowAdminCreateUserOnly: false, InviteMessageTemplate: { EmailSubject: 'Welcome' } },
    UserPoolAddOns: { AdvancedSecurityMode: 'AUDIT' },
    UsernameConfiguration: { CaseSensitive: false },
    AccountRecoverySetting: { RecoveryMechanisms: [{ Name: 'verified_email', Priority: 1 }] },
    UserPoolTier: 'ESSENTIALS',
  };
}

/** What UpdateUserPool must receive: the described pool minus the read-only fields, plus the new LambdaConfig. */
function expectedUpdate(pool: UserPoolType, lambdaConfig: NonNullable<UserPoolType['LambdaConfig']>) {
  const rest = structuredClone(pool) as Record<string, unknown>;
  for (const field of READ_ONLY_POOL_FIELDS) delete rest[field];
  return { ...rest, LambdaConfig: lambdaConfig, UserPoolId: POOL_ID };
}

/**
 * The JSON body the SDK would send for an UpdateUserPool input: the command's own serializer runs
 * (resolveMiddleware, not the mocked `send`) and a request handler captures the request instead of
 * sending it. This is what Cognito sees: members UpdateUserPool does not define are dropped here,
 * members it does define (such as AdminCreateUserConfig.UnusedAccountValidityDays) are kept.
 */
async function serializedUpdate(input: UpdateUserPoolCommandInput): Promise<{ target: string | undefined; body: unknown }> {
  let captured: { headers: Record<string, string>; body: unknown } | undefined;
  const client = new CognitoIdentityProviderClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDSERIALIZE', secretAccessKey: 'serialize-only' },
    requestHandler: {
      handle: async (request: { headers: Record<string, string>; body: unknown }) => {
        captured = request;
        throw Object.assign(new Error('captured, not sent'), { name: 'Captured', $metadata: {} });
      },
    } as never,
  });
  const command = new UpdateUserPoolCommand(input);
  const handler = command.resolveMiddleware(client.middlewareStack, client.config, {});
  await handler({ input: command.input }).catch((e: Error) => {
    if (e.name !== 'Captured') throw e;
  });
  client.destroy();
  expect(captured, 'the serialized UpdateUserPool request').toBeDefined();
  const raw = captured!.body;
  const text = typeof raw === 'string' ? raw : new TextDecoder().decode(raw as Uint8Array);
  return { target: captured!.headers['x-amz-target'], body: JSON.parse(text) };
}

const cognito = mockClient(CognitoIdentityProviderClient);
const lambda = mockClient(LambdaClient);
const cloudformation = mockClient(CloudFormationClient);

beforeEach(() => {
  cognito.reset();
  lambda.reset();
  cloudformation.reset();
  cognito.on(UpdateUserPoolCommand).resolves({});
  lambda.on(AddPermissionCommand).resolves({ Statement: '{}' });
  lambda.on(RemovePermissionCommand).resolves({});
});

const deps = () => {
  const io = bufferIo();
  return {
    io,
    deps: {
      io,
      cognito: new CognitoIdentityProviderClient({ region: 'eu-west-1' }),
      lambda: new LambdaClient({ region: 'eu-west-1' }),
      cloudformation: new CloudFormationClient({ region: 'eu-west-1' }),
    },
  };
};

describe('attach-trigger', () => {
  it('sends back every field it read, with only LambdaConfig.PostConfirmation added, and grants Cognito invoke permission first', async () => {
    const pool = describedPool({
      PreSignUp: 'arn:aws:lambda:eu-west-1:123456789012:function:PreSignUp',
      KMSKeyID: 'arn:aws:kms:eu-west-1:123456789012:key/k',
    });
    cognito.on(DescribeUserPoolCommand, { UserPoolId: POOL_ID }).resolves({ UserPool: pool });

    const { io, deps: d } = deps();
    const result = await runAttachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN, json: true }, d);
    expect(result.exitCode).toBe(0);

    const updates = cognito.commandCalls(UpdateUserPoolCommand);
    expect(updates).toHaveLength(1);
    expect(updates[0]!.args[0].input).toEqual(expectedUpdate(pool, { ...pool.LambdaConfig, PostConfirmation: FUNCTION_ARN }));
    for (const field of READ_ONLY_POOL_FIELDS) expect(updates[0]!.args[0].input).not.toHaveProperty(field);

    const grants = lambda.commandCalls(AddPermissionCommand);
    expect(grants).toHaveLength(1);
    expect(grants[0]!.args[0].input).toEqual({
      FunctionName: FUNCTION_ARN,
      StatementId: statementId(POOL_ID),
      Action: 'lambda:InvokeFunction',
      Principal: 'cognito-idp.amazonaws.com',
      SourceArn: POOL_ARN,
    });
    // Permission before trigger: no sign-up can meet a trigger Cognito may not call.
    expect(grants[0]!.calledBefore(updates[0]!)).toBe(true);

    const out = io.json<TriggerResult>();
    expect(out).toMatchObject({
      changed: true,
      permission: 'granted',
      before: pool.LambdaConfig,
      after: { ...pool.LambdaConfig, PostConfirmation: FUNCTION_ARN },
    });
    expect(out.before).not.toHaveProperty('PostConfirmation');
    expect(out.diff).toEqual([`LambdaConfig.PostConfirmation: (none) → ${FUNCTION_ARN}`]);
  });

  it('works on a pool without any LambdaConfig and accepts an existing permission statement', async () => {
    const pool = describedPool(undefined);
    cognito.on(DescribeUserPoolCommand).resolves({ UserPool: pool });
    lambda
      .on(AddPermissionCommand)
      .rejects(Object.assign(new Error('The statement id provided already exists'), { name: 'ResourceConflictException' }));
    const result = await runAttachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN }, deps().deps);
    expect(result.data.permission).toBe('already granted');
    expect(cognito.commandCalls(UpdateUserPoolCommand)[0]!.args[0].input).toEqual(expectedUpdate(pool, { PostConfirmation: FUNCTION_ARN }));
  });

  it('refuses to replace another post-confirmation trigger unless --force', async () => {
    const pool = describedPool({ PostConfirmation: OTHER_ARN });
    cognito.on(DescribeUserPoolCommand).resolves({ UserPool: pool });
    await expect(runAttachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN }, deps().deps)).rejects.toMatchObject({
      exitCode: 1,
      message: expect.stringContaining('--force'),
    });
    expect(cognito.commandCalls(UpdateUserPoolCommand)).toHaveLength(0);
    expect(lambda.commandCalls(AddPermissionCommand)).toHaveLength(0);

    const forced = await runAttachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN, force: true }, deps().deps);
    expect(forced.data.diff).toEqual([`LambdaConfig.PostConfirmation: ${OTHER_ARN} → ${FUNCTION_ARN}`]);
    expect(cognito.commandCalls(UpdateUserPoolCommand)[0]!.args[0].input).toEqual(expectedUpdate(pool, { PostConfirmation: FUNCTION_ARN }));
  });

  it('--dry-run prints the LambdaConfig diff and changes nothing', async () => {
    cognito.on(DescribeUserPoolCommand).resolves({ UserPool: describedPool({ PreSignUp: 'arn:pre' }) });
    const { io, deps: d } = deps();
    const result = await runAttachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN, dryRun: true }, d);
    expect(result.exitCode).toBe(0);
    expect(io.stdout).toContain(`LambdaConfig.PostConfirmation: (none) → ${FUNCTION_ARN}`);
    expect(io.stdout).toContain('dry run');
    expect(cognito.commandCalls(UpdateUserPoolCommand)).toHaveLength(0);
    expect(lambda.commandCalls(AddPermissionCommand)).toHaveLength(0);
  });

  it('takes the function ARN and pool id from the stack outputs when no flag is given', async () => {
    cloudformation.on(DescribeStacksCommand, { StackName: 'MyImport' }).resolves({
      Stacks: [
        {
          StackName: 'MyImport',
          CreationTime: new Date(),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: [
            { OutputKey: 'PostConfirmationFunctionArn', OutputValue: FUNCTION_ARN },
            { OutputKey: 'UserPoolId', OutputValue: POOL_ID },
          ],
        },
      ],
    });
    cognito.on(DescribeUserPoolCommand, { UserPoolId: POOL_ID }).resolves({ UserPool: describedPool() });
    const result = await runAttachTrigger({ stackName: 'MyImport' }, deps().deps);
    expect(result.data).toMatchObject({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN, changed: true });
    expect(cloudformation.commandCalls(DescribeStacksCommand)).toHaveLength(1);
  });

  it('names the flag when neither flag nor stack output is available (a missing stack exits 5, not 2)', async () => {
    cloudformation
      .on(DescribeStacksCommand)
      .rejects(Object.assign(new Error('Stack with id TrayAuthImport does not exist'), { name: 'ValidationError' }));
    await expect(runAttachTrigger({ userPoolId: POOL_ID }, deps().deps)).rejects.toMatchObject({
      exitCode: 5,
      message: expect.stringContaining('pass --function-arn'),
    });
  });

  it('exits 2 through the CLI entry point for a usage error, with --json giving a JSON error', async () => {
    // The stack exists but has no such output: the operator must pass the flag.
    cloudformation
      .on(DescribeStacksCommand)
      .resolves({ Stacks: [{ StackName: 'TrayAuthImport', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: [] }] });
    const io = bufferIo();
    const code = await main(['--json', 'attach-trigger', '--user-pool-id', POOL_ID], {
      io,
      cloudformation: new CloudFormationClient({ region: 'eu-west-1' }),
    });
    expect(code).toBe(2);
    expect(io.json<{ ok: boolean; error: { message: string } }>()).toMatchObject({
      ok: false,
      error: { message: expect.stringContaining('--function-arn') },
    });
  });
});

describe('UpdateUserPool input (written out, not derived from the implementation)', () => {
  /** What DescribeUserPool returns for a pool created before TemporaryPasswordValidityDays replaced UnusedAccountValidityDays: both are reported. */
  const legacyPool: UserPoolType = {
    Id: POOL_ID,
    Name: 'customers',
    Arn: POOL_ARN,
    Status: 'Enabled',
    CreationDate: new Date('2019-03-04T05:06:07Z'),
    LastModifiedDate: new Date('2025-01-02T03:04:05Z'),
    EstimatedNumberOfUsers: 42,
    Domain: 'customers-auth',
    SchemaAttributes: [{ Name: 'email', AttributeDataType: 'String', Mutable: true, Required: true }],
    Policies: {
      PasswordPolicy: {
        MinimumLength: 10,
        RequireUppercase: true,
        RequireLowercase: true,
        RequireNumbers: true,
        RequireSymbols: true,
        TemporaryPasswordValidityDays: 7,
      },
    },
    LambdaConfig: { PreSignUp: 'arn:aws:lambda:eu-west-1:123456789012:function:PreSignUp' },
    AutoVerifiedAttributes: ['email'],
    UsernameAttributes: ['email'],
    MfaConfiguration: 'OFF',
    EmailConfiguration: { EmailSendingAccount: 'COGNITO_DEFAULT' },
    AdminCreateUserConfig: {
      AllowAdminCreateUserOnly: true,
      UnusedAccountValidityDays: 7,
      InviteMessageTemplate: { EmailSubject: 'Welcome', EmailMessage: 'Hi {username}, {####}' },
    },
    AccountRecoverySetting: { RecoveryMechanisms: [{ Name: 'verified_email', Priority: 1 }] },
  };

  it('attach-trigger drops AdminCreateUserConfig.UnusedAccountValidityDays when the password policy has TemporaryPasswordValidityDays (Cognito rejects both)', async () => {
    cognito.on(DescribeUserPoolCommand, { UserPoolId: POOL_ID }).resolves({ UserPool: structuredClone(legacyPool) });
    const result = await runAttachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN }, deps().deps);
    expect(result.exitCode).toBe(0);

    const updates = cognito.commandCalls(UpdateUserPoolCommand);
    expect(updates).toHaveLength(1);
    const input = updates[0]!.args[0].input;
    expect(input).toEqual({
      UserPoolId: POOL_ID,
      Policies: {
        PasswordPolicy: {
          MinimumLength: 10,
          RequireUppercase: true,
          RequireLowercase: true,
          RequireNumbers: true,
          RequireSymbols: true,
          TemporaryPasswordValidityDays: 7,
        },
      },
      LambdaConfig: { PreSignUp: 'arn:aws:lambda:eu-west-1:123456789012:function:PreSignUp', PostConfirmation: FUNCTION_ARN },
      AutoVerifiedAttributes: ['email'],
      UsernameAttributes: ['email'],
      MfaConfiguration: 'OFF',
      EmailConfiguration: { EmailSendingAccount: 'COGNITO_DEFAULT' },
      AdminCreateUserConfig: {
        AllowAdminCreateUserOnly: true,
        InviteMessageTemplate: { EmailSubject: 'Welcome', EmailMessage: 'Hi {username}, {####}' },
      },
      AccountRecoverySetting: { RecoveryMechanisms: [{ Name: 'verified_email', Priority: 1 }] },
    });

    // And on the wire: the SDK would have sent UnusedAccountValidityDays (it is an UpdateUserPool
    // member); UsernameAttributes (not one) is not sent.
    expect(await serializedUpdate(input)).toEqual({
      target: 'AWSCognitoIdentityProviderService.UpdateUserPool',
      body: {
        UserPoolId: POOL_ID,
        Policies: {
          PasswordPolicy: {
            MinimumLength: 10,
            RequireUppercase: true,
            RequireLowercase: true,
            RequireNumbers: true,
            RequireSymbols: true,
            TemporaryPasswordValidityDays: 7,
          },
        },
        LambdaConfig: { PreSignUp: 'arn:aws:lambda:eu-west-1:123456789012:function:PreSignUp', PostConfirmation: FUNCTION_ARN },
        AutoVerifiedAttributes: ['email'],
        MfaConfiguration: 'OFF',
        EmailConfiguration: { EmailSendingAccount: 'COGNITO_DEFAULT' },
        AdminCreateUserConfig: {
          AllowAdminCreateUserOnly: true,
          InviteMessageTemplate: { EmailSubject: 'Welcome', EmailMessage: 'Hi {username}, {####}' },
        },
        AccountRecoverySetting: { RecoveryMechanisms: [{ Name: 'verified_email', Priority: 1 }] },
      },
    });
    // The pool as described is left as it was (the input is a copy).
    expect(legacyPool.AdminCreateUserConfig?.UnusedAccountValidityDays).toBe(7);
  });

  it('keeps UnusedAccountValidityDays (sent as read) when the password policy has no TemporaryPasswordValidityDays', async () => {
    const { TemporaryPasswordValidityDays: _none, ...policyWithout } = legacyPool.Policies!.PasswordPolicy!;
    cognito
      .on(DescribeUserPoolCommand)
      .resolves({ UserPool: { ...structuredClone(legacyPool), Policies: { PasswordPolicy: policyWithout } } });
    await runAttachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN }, deps().deps);
    const { body } = await serializedUpdate(cognito.commandCalls(UpdateUserPoolCommand)[0]!.args[0].input);
    expect(body).toMatchObject({
      Policies: {
        PasswordPolicy: { MinimumLength: 10, RequireUppercase: true, RequireLowercase: true, RequireNumbers: true, RequireSymbols: true },
      },
      AdminCreateUserConfig: {
        AllowAdminCreateUserOnly: true,
        UnusedAccountValidityDays: 7,
        InviteMessageTemplate: { EmailSubject: 'Welcome', EmailMessage: 'Hi {username}, {####}' },
      },
    });
    expect((body as { Policies: { PasswordPolicy: object } }).Policies.PasswordPolicy).not.toHaveProperty('TemporaryPasswordValidityDays');
  });

  it('detach-trigger drops it the same way', async () => {
    cognito
      .on(DescribeUserPoolCommand)
      .resolves({ UserPool: { ...structuredClone(legacyPool), LambdaConfig: { PostConfirmation: FUNCTION_ARN } } });
    await runDetachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN }, deps().deps);
    const { body } = await serializedUpdate(cognito.commandCalls(UpdateUserPoolCommand)[0]!.args[0].input);
    expect((body as { LambdaConfig: object }).LambdaConfig).toEqual({});
    expect((body as { AdminCreateUserConfig: object }).AdminCreateUserConfig).toEqual({
      AllowAdminCreateUserOnly: true,
      InviteMessageTemplate: { EmailSubject: 'Welcome', EmailMessage: 'Hi {username}, {####}' },
    });
  });
});

describe('detach-trigger', () => {
  it('removes only PostConfirmation, sends back everything else, and removes the permission', async () => {
    const pool = describedPool({ PostConfirmation: FUNCTION_ARN, PreSignUp: 'arn:pre' });
    cognito.on(DescribeUserPoolCommand).resolves({ UserPool: pool });
    const result = await runDetachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN }, deps().deps);
    expect(result.exitCode).toBe(0);
    expect(cognito.commandCalls(UpdateUserPoolCommand)[0]!.args[0].input).toEqual(expectedUpdate(pool, { PreSignUp: 'arn:pre' }));
    expect(lambda.commandCalls(RemovePermissionCommand)[0]!.args[0].input).toEqual({
      FunctionName: FUNCTION_ARN,
      StatementId: statementId(POOL_ID),
    });
    expect(result.data.permission).toBe('removed');
  });

  it("refuses to remove another function's trigger unless --force; does nothing when there is none", async () => {
    cognito.on(DescribeUserPoolCommand).resolves({ UserPool: describedPool({ PostConfirmation: OTHER_ARN }) });
    await expect(runDetachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN }, deps().deps)).rejects.toMatchObject({ exitCode: 1 });

    cognito.on(DescribeUserPoolCommand).resolves({ UserPool: describedPool({ PreSignUp: 'arn:pre' }) });
    const none = await runDetachTrigger({ userPoolId: POOL_ID, functionArn: FUNCTION_ARN }, deps().deps);
    expect(none.data).toMatchObject({ changed: false, permission: 'unchanged' });
    expect(cognito.commandCalls(UpdateUserPoolCommand)).toHaveLength(0);
  });
});
