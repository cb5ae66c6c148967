import {
  DescribeUserPoolCommand,
  type LambdaConfigType,
  UpdateUserPoolCommand,
  type UpdateUserPoolCommandInput,
  type UserPoolType,
} from '@aws-sdk/client-cognito-identity-provider';
import { AddPermissionCommand, RemovePermissionCommand } from '@aws-sdk/client-lambda';
import { SERVICE_NAME } from '../../shared/names.js';
import { type CliContext, type CliDeps, type CommandResult, type GlobalOptions, withContext } from '../context.js';
import { CliError, EXIT } from '../toolkit/errors.js';
import { emit } from '../toolkit/output.js';

/**
 * Attaches the deployed post-confirmation function to an existing user pool (CDK cannot add a
 * trigger to an imported pool), or detaches it. UpdateUserPool resets every setting it is not
 * given, so the pool is read first and everything read is sent back, with only
 * LambdaConfig.PostConfirmation changed (and the deprecated UnusedAccountValidityDays dropped when
 * the password policy carries TemporaryPasswordValidityDays: Cognito refuses both together). Cognito needs a resource policy on the function to
 * invoke it: granted before the trigger is set (so no sign-up meets a trigger it may not call),
 * removed after it is unset.
 */
export interface TriggerOptions extends GlobalOptions {
  userPoolId?: string;
  functionArn?: string;
  force?: boolean;
  dryRun?: boolean;
}

export interface TriggerResult {
  userPoolId: string;
  functionArn: string;
  action: 'attach' | 'detach';
  changed: boolean;
  dryRun: boolean;
  before: LambdaConfigType;
  after: LambdaConfigType;
  diff: string[];
  permission: 'granted' | 'already granted' | 'removed' | 'not present' | 'skipped (dry run)' | 'unchanged';
}

/** DescribeUserPool fields that UpdateUserPool does not take (read-only or create-only). */
export const READ_ONLY_POOL_FIELDS = [
  'Arn',
  'CreationDate',
  'CustomDomain',
  'Domain',
  'EmailConfigurationFailure',
  'EstimatedNumberOfUsers',
  'Id',
  'LastModifiedDate',
  'Name',
  'SchemaAttributes',
  'SmsConfigurationFailure',
  'Status',
] as const satisfies readonly (keyof UserPoolType)[];

const COGNITO_PRINCIPAL = 'cognito-idp.amazonaws.com';

/** The UpdateUserPool input that changes only LambdaConfig: the described pool minus the read-only fields. */
export function updateUserPoolInput(pool: UserPoolType, lambdaConfig: LambdaConfigType): UpdateUserPoolCommandInput {
  const rest: Record<string, unknown> = { ...pool };
  for (const field of READ_ONLY_POOL_FIELDS) delete rest[field];
  // DescribeUserPool reports AdminCreateUserConfig.UnusedAccountValidityDays (deprecated) next to
  // Policies.PasswordPolicy.TemporaryPasswordValidityDays, and the SDK serializes both; Cognito then
  // rejects the update ("Please use TemporaryPasswordValidityDays in PasswordPolicy instead of
  // UnusedAccountValidityDays", aws/aws-sdk-js#3817). The password policy's value is the one in
  // force, so the deprecated field is dropped when both are present.
  const adminCreateUserConfig = pool.AdminCreateUserConfig;
  if (
    adminCreateUserConfig?.UnusedAccountValidityDays !== undefined &&
    pool.Policies?.PasswordPolicy?.TemporaryPasswordValidityDays !== undefined
  ) {
    const { UnusedAccountValidityDays: _deprecated, ...kept } = adminCreateUserConfig;
    rest.AdminCreateUserConfig = kept;
  }
  // Fields DescribeUserPool returns but UpdateUserPool does not define (AliasAttributes, UsernameAttributes,
  // UsernameConfiguration) are passed along as read; the SDK serializes only UpdateUserPool's own members.
  return { ...(rest as Omit<UpdateUserPoolCommandInput, 'UserPoolId'>), LambdaConfig: lambdaConfig, UserPoolId: pool.Id };
}

export function statementId(userPoolId: string): string {
  return `${SERVICE_NAME}-${userPoolId}`.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 100);
}

export async function runAttachTrigger(options: TriggerOptions, deps?: CliDeps): Promise<CommandResult<TriggerResult>> {
  return withContext(options, deps, (ctx) => changeTrigger(ctx, options, 'attach'));
}

export async function runDetachTrigger(options: TriggerOptions, deps?: CliDeps): Promise<CommandResult<TriggerResult>> {
  return withContext(options, deps, (ctx) => changeTrigger(ctx, options, 'detach'));
}

async function changeTrigger(ctx: CliContext, options: TriggerOptions, action: 'attach' | 'detach'): Promise<CommandResult<TriggerResult>> {
  const userPoolId = await ctx.userPoolId(options.userPoolId);
  const functionArn = await ctx.setting('PostConfirmationFunctionArn', options.functionArn, '--function-arn');
  const pool = await describePool(ctx, userPoolId);
  const before: LambdaConfigType = { ...(pool.LambdaConfig ?? {}) };
  const current = before.PostConfirmation;

  let after: LambdaConfigType;
  if (action === 'attach') {
    if (current && current !== functionArn && !options.force) {
      throw new CliError(
        `user pool ${userPoolId} already has a post-confirmation trigger (${current}); a pool has one, so attaching replaces it: pass --force to replace it, or chain the two functions`,
        EXIT.failures,
      );
    }
    after = { ...before, PostConfirmation: functionArn };
  } else {
    if (current && current !== functionArn && !options.force) {
      throw new CliError(
        `user pool ${userPoolId}'s post-confirmation trigger is ${current}, not ${functionArn}; pass --force to remove it anyway`,
        EXIT.failures,
      );
    }
    const { PostConfirmation: _removed, ...others } = before;
    after = others;
  }
  const changed = before.PostConfirmation !== after.PostConfirmation;
  const diff = [
    `LambdaConfig.PostConfirmation: ${before.PostConfirmation ?? '(none)'} → ${after.PostConfirmation ?? '(none)'}${changed ? '' : ' (unchanged)'}`,
  ];
  const result: TriggerResult = {
    userPoolId,
    functionArn,
    action,
    changed,
    dryRun: options.dryRun === true,
    before,
    after,
    diff,
    permission: 'skipped (dry run)',
  };

  if (!options.dryRun) {
    if (action === 'attach') {
      result.permission = await grantInvoke(ctx, functionArn, userPoolId, pool.Arn);
      if (changed) await ctx.cognito.send(new UpdateUserPoolCommand(updateUserPoolInput(pool, after)));
    } else {
      if (changed) await ctx.cognito.send(new UpdateUserPoolCommand(updateUserPoolInput(pool, after)));
      result.permission = current ? await revokeInvoke(ctx, current, userPoolId) : 'unchanged';
    }
  }

  emit(ctx.io, ctx.json, result, () => [
    ...diff,
    options.dryRun
      ? action === 'attach'
        ? `dry run: would let ${COGNITO_PRINCIPAL} invoke ${functionArn} (scoped to ${pool.Arn ?? userPoolId})${changed ? ', then update the pool' : '; the pool needs no change'}`
        : `dry run: ${changed ? `would update the pool, then remove the invoke permission from ${current}` : 'the pool needs no change'}`
      : `${changed ? `${action === 'attach' ? 'attached to' : 'detached from'} ${userPoolId}` : `nothing to change in ${userPoolId}`}; invoke permission: ${result.permission}`,
  ]);
  return { exitCode: EXIT.ok, data: result };
}

async function describePool(ctx: CliContext, userPoolId: string): Promise<UserPoolType> {
  try {
    const pool = (await ctx.cognito.send(new DescribeUserPoolCommand({ UserPoolId: userPoolId }))).UserPool;
    if (!pool) throw new CliError(`DescribeUserPool returned no pool for --user-pool-id ${userPoolId}`, EXIT.failures);
    return pool;
  } catch (e) {
    if ((e as Error).name === 'ResourceNotFoundException')
      throw new CliError(`--user-pool-id ${userPoolId}: no such user pool; check the id and --region`);
    throw e;
  }
}

async function grantInvoke(
  ctx: CliContext,
  functionArn: string,
  userPoolId: string,
  poolArn: string | undefined,
): Promise<TriggerResult['permission']> {
  if (!poolArn)
    throw new CliError(`DescribeUserPool did not return the ARN of ${userPoolId}; cannot scope the invoke permission`, EXIT.failures);
  try {
    await ctx.lambda.send(
      new AddPermissionCommand({
        FunctionName: functionArn,
        StatementId: statementId(userPoolId),
        Action: 'lambda:InvokeFunction',
        Principal: COGNITO_PRINCIPAL,
        SourceArn: poolArn,
      }),
    );
    return 'granted';
  } catch (e) {
    // The statement exists already (an earlier attach): that is the state we want.
    if ((e as Error).name === 'ResourceConflictException') return 'already granted';
    throw e;
  }
}

async function revokeInvoke(ctx: CliContext, functionArn: string, userPoolId: string): Promise<TriggerResult['permission']> {
  try {
    await ctx.lambda.send(new RemovePermissionCommand({ FunctionName: functionArn, StatementId: statementId(userPoolId) }));
    return 'removed';
  } catch (e) {
    if ((e as Error).name === 'ResourceNotFoundException') return 'not present';
    throw e;
  }
}
